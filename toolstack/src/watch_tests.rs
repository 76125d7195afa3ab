//! `keelctl watch` against a model: domains created from configurations with every
//! `on_*` action, ending for every reason, destroyed by the administrator, and the
//! watcher's passes in between; after each step Keel's list (the fake control interface)
//! and the saved records must be what the model says.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::time::Duration;

use proptest::prelude::*;

use crate::cli::{run, Host};
use crate::control::Keep;
use crate::control::{Control, DomId, DomainInfo, ShutdownReason};
use crate::domain_config::Action;
use crate::fake_control::Fake;
use crate::watch::{self, Ends, Record, Step};

/// A host with files, an in-memory state directory and no xenstore.
struct StateHost {
    files: BTreeMap<String, Vec<u8>>,
    state: BTreeMap<String, String>,
}

impl Host for StateHost {
    fn read_file(&self, path: &str) -> std::io::Result<Vec<u8>> {
        self.files.get(path).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
    fn sleep(&self, _: Duration) {}
    fn console_input(&mut self) -> Box<dyn Read + Send> {
        Box::new(std::io::empty())
    }
    fn raw_terminal(&mut self, _: bool) {}
    fn state_write(&mut self, name: &str, text: &str) -> std::io::Result<()> {
        self.state.insert(name.into(), text.into());
        Ok(())
    }
    fn state_remove(&mut self, name: &str) -> std::io::Result<()> {
        self.state.remove(name);
        Ok(())
    }
    fn state_files(&self) -> std::io::Result<Vec<(String, String)>> {
        Ok(self.state.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
    }
}

const ACTIONS: [(&str, Action); 7] = [
    ("destroy", Action::Destroy),
    ("restart", Action::Restart),
    ("preserve", Action::Preserve),
    ("rename-restart", Action::RenameRestart),
    ("coredump-destroy", Action::CoredumpDestroy),
    ("coredump-restart", Action::CoredumpRestart),
    ("soft-reset", Action::SoftReset),
];

const REASONS: [ShutdownReason; 6] = [
    ShutdownReason::Poweroff,
    ShutdownReason::Reboot,
    ShutdownReason::Suspend,
    ShutdownReason::Crash,
    ShutdownReason::Watchdog,
    ShutdownReason::SoftReset,
];

fn config(name: &str, ends: [usize; 3]) -> String {
    format!(
        "name = \"{name}\"\nkernel = \"/k\"\nmemory = 16\non_poweroff = \"{}\"\non_reboot = \"{}\"\non_crash = \"{}\"\n",
        ACTIONS[ends[0]].0, ACTIONS[ends[1]].0, ACTIONS[ends[2]].0
    )
}

fn host() -> StateHost {
    let mut files = BTreeMap::new();
    files.insert("/k".to_string(), vec![1; 100]);
    StateHost { files, state: BTreeMap::new() }
}

fn keelctl(ctl: &mut dyn Control, h: &mut StateHost, line: &str) -> (u8, String, String) {
    let args: Vec<String> = line.split_whitespace().map(String::from).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, ctl, h, &mut out, &mut err);
    (code, String::from_utf8(out).unwrap(), String::from_utf8(err).unwrap())
}

fn id_of(f: &mut Fake, name: &str) -> Option<DomId> {
    f.list().unwrap().iter().find(|d| d.name == name).map(|d| d.id)
}

const DEFAULTS: Ends = Ends { poweroff: Action::Destroy, reboot: Action::Restart, crash: Action::Destroy };

#[test]
fn keel_keeps_only_the_ends_that_are_not_destroyed() {
    assert_eq!(watch::keep_for(&DEFAULTS), Keep { poweroff: false, reboot: true, crash: false });
    let all = Ends { poweroff: Action::Preserve, reboot: Action::SoftReset, crash: Action::CoredumpRestart };
    assert_eq!(watch::keep_for(&all), Keep { poweroff: true, reboot: true, crash: true });
    let none = Ends { poweroff: Action::CoredumpDestroy, reboot: Action::Destroy, crash: Action::Destroy };
    assert_eq!(watch::keep_for(&none), Keep::default());
}

#[test]
fn the_plan_follows_the_reason_of_each_end() {
    let rec = |id: DomId, ends| Record { id, name: format!("d{id}"), path: "c".into(), text: String::new(), ends };
    let ends = Ends { poweroff: Action::Destroy, reboot: Action::Restart, crash: Action::Preserve };
    let info = |id: DomId, shutdown: Option<ShutdownReason>| DomainInfo {
        id,
        name: format!("d{id}"),
        memory_kib: 0,
        vcpus_online: 1,
        running: shutdown.is_none(),
        blocked: false,
        paused: false,
        shutdown,
        dying: false,
        cpu_time_ns: 0,
    };
    let records: Vec<Record> = (1..=7).map(|i| rec(i, ends)).collect();
    let mut listed = vec![
        info(1, None),
        info(2, Some(ShutdownReason::Poweroff)),
        info(3, Some(ShutdownReason::Reboot)),
        info(4, Some(ShutdownReason::Watchdog)),
        info(5, Some(ShutdownReason::Suspend)),
        DomainInfo { name: "other".into(), ..info(6, None) },
    ];
    let none = BTreeSet::new();
    let plan = watch::plan(&records, &listed, &none);
    assert_eq!(
        plan,
        [(2, Step::Destroy), (3, Step::Restart), (4, Step::Preserve), (6, Step::Forget), (7, Step::Forget)],
        "running and suspended: nothing; an id used again by another name, or none: gone"
    );
    let preserved: BTreeSet<DomId> = [4].into();
    assert!(!watch::plan(&records, &listed, &preserved).contains(&(4, Step::Preserve)), "preserved once");
    listed[1].dying = true;
    // Destroyed, its memory not back yet (a back end still maps its pages): gone for the
    // watcher, which cleans its devices up, so that the back end lets go.
    assert!(watch::plan(&records, &listed, &none).contains(&(2, Step::Forget)), "a dying domain is gone");
}

#[test]
fn records_read_back_and_garbage_is_not_one() {
    let r = Record {
        id: 7,
        name: "web".into(),
        path: "/etc/web.cfg".into(),
        text: "name = 'web'\n".into(),
        ends: DEFAULTS,
    };
    assert_eq!(
        watch::parse_saved(&watch::render(&r)),
        Some((7, "web".to_string(), "/etc/web.cfg".to_string(), "name = 'web'\n".to_string()))
    );
    for bad in ["", "name = 'web'\n", "# keelctl: domain x (web) from y\n", "# keelctl: domain 7 web\n"] {
        assert_eq!(watch::parse_saved(bad), None, "{bad:?}");
    }
}

#[test]
fn a_rebooted_domain_comes_back_a_crashed_one_is_preserved_a_powered_off_one_is_gone() {
    let (mut f, mut h) = (Fake::new(), host());
    h.files.insert("r.cfg".into(), config("r", [0, 1, 0]).into_bytes());
    h.files.insert("c.cfg".into(), config("c", [0, 1, 2]).into_bytes());
    h.files.insert("p.cfg".into(), config("p", [0, 1, 0]).into_bytes());
    for c in ["r.cfg", "c.cfg", "p.cfg"] {
        assert_eq!(keelctl(&mut f, &mut h, &format!("create {c}")).0, 0);
    }
    assert_eq!(h.state.len(), 3, "a record each");
    let (r, c, p) = (id_of(&mut f, "r").unwrap(), id_of(&mut f, "c").unwrap(), id_of(&mut f, "p").unwrap());
    f.end(r, ShutdownReason::Reboot);
    f.end(c, ShutdownReason::Crash);
    f.end(p, ShutdownReason::Poweroff);
    assert_eq!(id_of(&mut f, "p"), None, "Keel destroyed it at once: on_poweroff is destroy");
    let (code, out, err) = keelctl(&mut f, &mut h, "watch -1");
    assert_eq!((code, err.as_str()), (0, ""));
    let new = id_of(&mut f, "r").unwrap();
    assert_ne!(new, r);
    assert_eq!(
        out,
        format!(
            "keel-watch: domain {r} (r): reboot: restarted as domain {new}\n\
             keel-watch: domain {c} (c): crashed: preserved\n\
             keel-watch: domain {p} (p): gone; its devices and xenstore nodes removed\n"
        )
    );
    let crashed = f.list().unwrap().into_iter().find(|d| d.id == c).unwrap();
    assert_eq!(crashed.shutdown, Some(ShutdownReason::Crash), "still listed as crashed");
    assert_eq!(f.created.iter().filter(|x| x.0 == "r").count(), 2, "built again from its configuration");
    let names: BTreeSet<String> = h.state.keys().cloned().collect();
    assert_eq!(names, [format!("domain-{new}"), format!("domain-{c}"), format!("preserved-{c}")].into());
    assert_eq!(keelctl(&mut f, &mut h, "watch -1").1, "", "nothing more to do");
    assert_eq!(keelctl(&mut f, &mut h, "destroy c").0, 0);
    assert_eq!(h.state.len(), 1, "destroy drops the record and the mark");
}

#[test]
fn a_restart_that_fails_is_reported_and_the_watcher_goes_on() {
    let (mut f, mut h) = (Fake::new(), host());
    h.files.insert("r.cfg".into(), config("r", [1, 1, 1]).into_bytes());
    assert_eq!(keelctl(&mut f, &mut h, "create r.cfg").0, 0);
    let r = id_of(&mut f, "r").unwrap();
    h.files.remove("/k");
    f.end(r, ShutdownReason::Poweroff);
    let (code, out, err) = keelctl(&mut f, &mut h, "watch -1");
    assert_eq!((code, out.as_str()), (0, ""));
    assert!(err.contains(&format!("domain {r} (r): shutdown: cannot restart it: ")), "{err}");
    assert!(err.contains("kernel: cannot read `/k`"), "{err}");
    assert_eq!(id_of(&mut f, "r"), None, "the old domain is gone all the same");
    assert!(h.state.is_empty());
}

/// One step of the model test.
#[derive(Clone, Debug)]
enum Op {
    Create(usize, [usize; 3]),
    End(usize, usize),
    Destroy(usize),
    Pass,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, [0..7usize, 0..7usize, 0..7usize]).prop_map(|(d, e)| Op::Create(d, e)),
        (0..3usize, 0..6usize).prop_map(|(d, r)| Op::End(d, r)),
        (0..3usize).prop_map(Op::Destroy),
        Just(Op::Pass),
    ]
}

/// What the model knows of one domain: its name and configured ends, how it ended (and
/// whether Keel kept it) if the watcher has not acted on that yet, and whether it was
/// preserved.
struct Modelled {
    name: String,
    ends: Ends,
    ended: Option<(ShutdownReason, bool)>,
    preserved: Option<ShutdownReason>,
}

impl Modelled {
    /// Whether Keel still lists it.
    fn listed(&self) -> bool {
        !matches!(self.ended, Some((_, false)))
    }
}

fn kept(ends: &Ends, r: ShutdownReason) -> bool {
    let k = watch::keep_for(ends);
    match r {
        ShutdownReason::Poweroff => k.poweroff,
        ShutdownReason::Reboot | ShutdownReason::SoftReset => k.reboot,
        ShutdownReason::Crash | ShutdownReason::Watchdog => k.crash,
        ShutdownReason::Suspend => false,
    }
}

proptest! {
    #[test]
    fn the_watcher_does_what_the_model_says(ops in proptest::collection::vec(op(), 1..40)) {
        let (mut f, mut h) = (Fake::new(), host());
        let mut model: BTreeMap<DomId, Modelled> = BTreeMap::new();
        for op in ops {
            let listed_named = |model: &BTreeMap<DomId, Modelled>, name: &str| {
                model.iter().find(|(_, m)| m.name == name && m.listed()).map(|(id, _)| *id)
            };
            match op.clone() {
                Op::Create(d, e) => {
                    let name = format!("d{d}");
                    h.files.insert(format!("{name}.cfg"), config(&name, e).into_bytes());
                    let code = keelctl(&mut f, &mut h, &format!("create {name}.cfg")).0;
                    prop_assert_eq!(code == 0, listed_named(&model, &name).is_none(), "create of {}", name);
                    if code == 0 {
                        let ends = Ends { poweroff: ACTIONS[e[0]].1, reboot: ACTIONS[e[1]].1, crash: ACTIONS[e[2]].1 };
                        let id = id_of(&mut f, &name).unwrap();
                        model.insert(id, Modelled { name, ends, ended: None, preserved: None });
                    }
                }
                Op::End(d, r) => {
                    let Some(id) = listed_named(&model, &format!("d{d}")) else { continue };
                    let m = model.get_mut(&id).unwrap();
                    if m.ended.is_some() || m.preserved.is_some() {
                        continue;
                    }
                    f.end(id, REASONS[r]);
                    m.ended = Some((REASONS[r], kept(&m.ends, REASONS[r])));
                }
                Op::Destroy(d) => {
                    let name = format!("d{d}");
                    let listed = listed_named(&model, &name);
                    let code = keelctl(&mut f, &mut h, &format!("destroy {name}")).0;
                    prop_assert_eq!(code == 0, listed.is_some());
                    if let Some(id) = listed {
                        model.remove(&id);
                    }
                }
                Op::Pass => {
                    prop_assert_eq!(keelctl(&mut f, &mut h, "watch -1").0, 0);
                    let mut restarted = Vec::new();
                    model.retain(|_, m| {
                        let Some((r, kept)) = m.ended.take() else { return true };
                        let step = watch::action_for(&m.ends, r).map(watch::step_of);
                        match (kept, step) {
                            (true, Some(Step::Restart)) => {
                                restarted.push((m.name.clone(), m.ends));
                                false
                            }
                            (true, Some(Step::Preserve)) => {
                                m.preserved = Some(r);
                                true
                            }
                            _ => false,
                        }
                    });
                    for (name, ends) in restarted {
                        let id = id_of(&mut f, &name);
                        prop_assert!(id.is_some(), "{} restarted", name);
                        model.insert(id.unwrap(), Modelled { name, ends, ended: None, preserved: None });
                    }
                }
            }
            // Keel's list is what the model says, and nothing else of ours is in it.
            let listed = f.list().unwrap();
            for (id, m) in model.iter().filter(|(_, m)| m.listed()) {
                let d = listed.iter().find(|d| d.id == *id && d.name == m.name);
                prop_assert!(d.is_some(), "{} ({}) listed", m.name, id);
                let want = m.preserved.or(m.ended.map(|e| e.0));
                prop_assert_eq!(d.unwrap().shutdown, want, "{}", m.name);
            }
            for d in listed.iter().filter(|d| d.id != 0) {
                prop_assert!(model.get(&d.id).is_some_and(|m| m.listed()), "{} ({}) is left over", d.name, d.id);
            }
            // A record for each modelled domain; right after a pass, no other.
            let recorded: BTreeSet<DomId> =
                h.state.iter().filter(|(n, _)| n.starts_with("domain-")).filter_map(|(_, t)| watch::parse_saved(t).map(|r| r.0)).collect();
            let ids: BTreeSet<DomId> = model.keys().copied().collect();
            prop_assert!(ids.is_subset(&recorded), "records {:?}, domains {:?}", recorded, ids);
            if matches!(op, Op::Pass) {
                prop_assert_eq!(recorded, ids);
            }
        }
    }
}
