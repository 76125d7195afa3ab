//! Network interface specifications, xl-network-configuration(5): comma-separated
//! `key=value` items (`mac`, `bridge`, `ip`, `backend`, `vifname`, `script`, `type`,
//! `model`, `rate`, `mtu`, ...). Every key is optional; an unknown key is an error.

/// One network interface.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VifSpec {
    pub mac: Option<[u8; 6]>,
    pub bridge: Option<String>,
    pub ip: Vec<String>,
    pub backend: Option<String>,
    pub vifname: Option<String>,
    pub script: Option<String>,
    pub kind: Option<String>,
    pub model: Option<String>,
    pub rate: Option<String>,
    pub mtu: Option<u32>,
    pub gatewaydev: Option<String>,
}

fn mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let bad = || format!("mac `{s}` is not six hex bytes separated by `:`");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *o = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if out[0] & 1 != 0 {
        return Err(format!("mac `{s}` is a multicast address"));
    }
    Ok(out)
}

impl VifSpec {
    /// Parses one vif string; the message says what is wrong.
    pub fn parse(spec: &str) -> Result<VifSpec, String> {
        let mut v = VifSpec::default();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, val) = item.split_once('=').ok_or(format!("`{item}` is not key=value"))?;
            let (k, val) = (k.trim(), val.trim());
            match k {
                "mac" => v.mac = Some(mac(val)?),
                "bridge" => v.bridge = Some(val.into()),
                "ip" => v.ip = val.split_whitespace().map(String::from).collect(),
                "backend" => v.backend = Some(val.into()),
                "vifname" => v.vifname = Some(val.into()),
                "script" => v.script = Some(val.into()),
                "type" => v.kind = Some(val.into()),
                "model" => v.model = Some(val.into()),
                "rate" => v.rate = Some(val.into()),
                "gatewaydev" => v.gatewaydev = Some(val.into()),
                "mtu" => v.mtu = Some(val.parse().map_err(|_| format!("mtu `{val}` is not a number"))?),
                _ => return Err(format!("unknown vif parameter `{k}`")),
            }
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_from_the_manual() {
        let v = VifSpec::parse("mac=00:16:3e:01:02:03,bridge=xenbr0,ip=10.0.0.2 10.0.0.3").unwrap();
        assert_eq!(v.mac, Some([0, 0x16, 0x3e, 1, 2, 3]));
        assert_eq!(v.bridge.as_deref(), Some("xenbr0"));
        assert_eq!(v.ip, ["10.0.0.2", "10.0.0.3"]);
        assert_eq!(VifSpec::parse("").unwrap(), VifSpec::default());
        assert_eq!(VifSpec::parse("backend=netdom, mtu=9000").unwrap().mtu, Some(9000));
    }

    #[test]
    fn errors() {
        assert!(VifSpec::parse("mac=00:16:3e:01:02").is_err());
        assert!(VifSpec::parse("mac=01:16:3e:01:02:03").unwrap_err().contains("multicast"));
        assert!(VifSpec::parse("bridge").is_err());
        assert!(VifSpec::parse("colour=blue").unwrap_err().contains("colour"));
        assert!(VifSpec::parse("mtu=big").is_err());
    }
}
