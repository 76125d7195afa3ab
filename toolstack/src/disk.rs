//! Disk specifications, xl-disk-configuration(5): comma-separated `key=value` items and
//! flags, plus positional parameters. Four positionals are `target, format, vdev, access`;
//! fewer are the legacy `target, vdev, access` (as in `'phy:/dev/vg/guest,xvda,w'`).
//! `target=` takes the rest of the string, commas included. A legacy prefix on the target
//! (`phy:`, `file:`, `tap:aio:`, `raw:`, `qcow2:`, ...) sets the format or backend type.

/// Image formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow,
    Qcow2,
    Vhd,
    Qed,
}

/// How the backend reaches the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendType {
    Phy,
    Qdisk,
    Tap,
}

/// One disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskSpec {
    pub target: String,
    pub format: DiskFormat,
    pub vdev: String,
    pub writable: bool,
    pub cdrom: bool,
    pub backend: Option<String>,
    pub backend_type: Option<BackendType>,
    pub script: Option<String>,
    pub direct_io_safe: bool,
    pub discard: Option<bool>,
}

fn format_named(s: &str) -> Option<DiskFormat> {
    Some(match s {
        "raw" => DiskFormat::Raw,
        "qcow" => DiskFormat::Qcow,
        "qcow2" => DiskFormat::Qcow2,
        "vhd" => DiskFormat::Vhd,
        "qed" => DiskFormat::Qed,
        _ => return None,
    })
}

fn access(s: &str) -> Result<bool, String> {
    match s {
        "r" | "ro" => Ok(false),
        "w" | "rw" => Ok(true),
        _ => Err(format!("access `{s}` is not r, ro, w or rw")),
    }
}

impl DiskSpec {
    /// Parses one disk string; the message says what is wrong.
    pub fn parse(spec: &str) -> Result<DiskSpec, String> {
        let mut d = DiskSpec {
            target: String::new(),
            format: DiskFormat::Raw,
            vdev: String::new(),
            writable: true,
            cdrom: false,
            backend: None,
            backend_type: None,
            script: None,
            direct_io_safe: false,
            discard: None,
        };
        let mut positional: Vec<&str> = Vec::new();
        let mut target: Option<String> = None;
        let mut rest = spec;
        loop {
            rest = rest.trim_start();
            if rest.is_empty() {
                break;
            }
            if let Some(t) = rest.strip_prefix("target=") {
                target = Some(t.to_string());
                break;
            }
            let (item, tail) = rest.split_once(',').unwrap_or((rest, ""));
            rest = tail;
            let item = item.trim();
            match item.split_once('=') {
                Some((k, v)) => match k {
                    "format" => d.format = format_named(v).ok_or(format!("unknown format `{v}`"))?,
                    "vdev" => d.vdev = v.to_string(),
                    "access" => d.writable = access(v)?,
                    "devtype" => match v {
                        "cdrom" => d.cdrom = true,
                        "disk" => d.cdrom = false,
                        _ => return Err(format!("devtype `{v}` is not disk or cdrom")),
                    },
                    "backend" => d.backend = Some(v.to_string()),
                    "backendtype" => {
                        d.backend_type = Some(match v {
                            "phy" => BackendType::Phy,
                            "qdisk" => BackendType::Qdisk,
                            "tap" => BackendType::Tap,
                            _ => return Err(format!("backendtype `{v}` is not phy, qdisk or tap")),
                        })
                    }
                    "script" => d.script = Some(v.to_string()),
                    _ => return Err(format!("unknown disk parameter `{k}`")),
                },
                None => match item {
                    "cdrom" => d.cdrom = true,
                    "direct-io-safe" => d.direct_io_safe = true,
                    "discard" => d.discard = Some(true),
                    "no-discard" => d.discard = Some(false),
                    _ => positional.push(item),
                },
            }
        }
        match positional.as_slice() {
            [] => {}
            [t] => target = Some(t.to_string()),
            [t, v] => {
                target = Some(t.to_string());
                d.vdev = v.to_string();
            }
            [t, v, a] => {
                target = Some(t.to_string());
                d.vdev = v.to_string();
                d.writable = access(a)?;
            }
            [t, f, v, a] => {
                target = Some(t.to_string());
                if !f.is_empty() {
                    d.format = format_named(f).ok_or(format!("unknown format `{f}`"))?;
                }
                d.vdev = v.to_string();
                d.writable = access(a)?;
            }
            _ => return Err("more than four positional parameters".into()),
        }
        // Legacy prefixes on the target and `:cdrom` on the vdev.
        let mut t = target.unwrap_or_default();
        while let Some((prefix, rest)) = t.split_once(':') {
            match prefix {
                "phy" => d.backend_type = Some(BackendType::Phy),
                "file" | "aio" => {}
                "tap" | "tap2" => d.backend_type = Some(BackendType::Tap),
                p => match format_named(p) {
                    Some(f) => d.format = f,
                    None => break,
                },
            }
            t = rest.to_string();
        }
        if let Some(v) = d.vdev.strip_suffix(":cdrom") {
            d.vdev = v.to_string();
            d.cdrom = true;
        }
        if d.vdev.is_empty() {
            return Err("no vdev (the guest's name for the disk, e.g. xvda)".into());
        }
        if t.is_empty() && !d.cdrom {
            return Err("no target (the image or device)".into());
        }
        if d.cdrom {
            d.writable = false;
        }
        d.target = t;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_from_the_manual() {
        let d = DiskSpec::parse("phy:/dev/vg/guest,xvda,w").unwrap();
        assert_eq!((d.target.as_str(), d.vdev.as_str(), d.writable), ("/dev/vg/guest", "xvda", true));
        assert_eq!(d.backend_type, Some(BackendType::Phy));
        let d = DiskSpec::parse("/img.qcow2,qcow2,xvdb,r").unwrap();
        assert_eq!((d.format, d.writable), (DiskFormat::Qcow2, false));
        let d = DiskSpec::parse("format=raw, vdev=xvdc, access=rw, target=/a,b.img").unwrap();
        assert_eq!((d.target.as_str(), d.vdev.as_str()), ("/a,b.img", "xvdc"));
        let d = DiskSpec::parse("file:/iso,hdc:cdrom,r").unwrap();
        assert!(d.cdrom && !d.writable);
        let d = DiskSpec::parse(",,hdc,r,devtype=cdrom").unwrap();
        assert!(d.cdrom && d.target.is_empty());
        let d = DiskSpec::parse("tap:qcow2:/x.qcow2,xvde,w").unwrap();
        assert_eq!((d.format, d.backend_type), (DiskFormat::Qcow2, Some(BackendType::Tap)));
    }

    #[test]
    fn errors() {
        assert!(DiskSpec::parse("/img").unwrap_err().contains("vdev"));
        assert!(DiskSpec::parse("vdev=xvda").unwrap_err().contains("target"));
        assert!(DiskSpec::parse("/img,xvda,x").unwrap_err().contains("access"));
        assert!(DiskSpec::parse("/img,xvda,w,frob=1").unwrap_err().contains("frob"));
        assert!(DiskSpec::parse("a,b,c,d,e").is_err());
    }
}
