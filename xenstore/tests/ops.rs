//! One test per operation and error, through the service's request interface.
mod common;

use common::*;
use keel_xenstore::quota::Quotas;
use keel_xenstore::service::Action;
use keel_xenstore::{MsgType, Xenstore, XsError};

#[test]
fn write_read_and_relative_paths() {
    let (mut xs, dom0, g) = with_guest(5);
    assert_eq!(write(&mut xs, g, "data/x", "hello"), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, dom0, "/local/domain/5/data/x"), Ok(b"hello".to_vec()));
    assert_eq!(read(&mut xs, g, "data/x"), Ok(b"hello".to_vec()));
    assert_eq!(read(&mut xs, g, "data/missing"), Err(XsError::Enoent));
    assert_eq!(read(&mut xs, g, "bad//path"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, g, MsgType::Read, 0, b"data/x"), Err(XsError::Einval), "no NUL");
    // The parents WRITE made belong to the guest and inherit the home's perms.
    assert_eq!(req(&mut xs, dom0, MsgType::GetPerms, 0, &nul("/local/domain/5/data")), Ok(b"n5\0r0\0".to_vec()));
}

#[test]
fn unprivileged_domains_stay_in_their_subtree() {
    let (mut xs, dom0, g) = with_guest(5);
    write(&mut xs, dom0, "/secret", "s").unwrap();
    assert_eq!(read(&mut xs, g, "/secret"), Err(XsError::Eacces));
    assert_eq!(write(&mut xs, g, "/secret", "x"), Err(XsError::Eacces));
    assert_eq!(write(&mut xs, g, "/local/domain/6/x", "x"), Err(XsError::Eacces));
    assert_eq!(req(&mut xs, g, MsgType::Rm, 0, &nul("/secret")), Err(XsError::Eacces));
    assert_eq!(req(&mut xs, g, MsgType::Mkdir, 0, &nul("/secret")), Err(XsError::Eacces));
    assert_eq!(req(&mut xs, g, MsgType::Directory, 0, &nul("/")), Err(XsError::Eacces));
    assert_eq!(req(&mut xs, g, MsgType::GetPerms, 0, &nul("/secret")), Err(XsError::Eacces));
    assert_eq!(read(&mut xs, dom0, "/secret"), Ok(b"s".to_vec()));
}

#[test]
fn listed_domains_get_their_access() {
    let (mut xs, dom0, g) = with_guest(5);
    write(&mut xs, dom0, "/shared", "v").unwrap();
    req(&mut xs, dom0, MsgType::SetPerms, 0, b"/shared\0n0\0r5\0").unwrap();
    assert_eq!(read(&mut xs, g, "/shared"), Ok(b"v".to_vec()));
    assert_eq!(write(&mut xs, g, "/shared", "x"), Err(XsError::Eacces));
    req(&mut xs, dom0, MsgType::SetPerms, 0, b"/shared\0n0\0b5\0").unwrap();
    assert_eq!(write(&mut xs, g, "/shared/child", "c"), Ok(b"OK\0".to_vec()));
    // The child is the guest's, with the parent's other entries.
    assert_eq!(req(&mut xs, g, MsgType::GetPerms, 0, &nul("/shared/child")), Ok(b"n5\0b5\0".to_vec()));
}

#[test]
fn set_perms_rules() {
    let (mut xs, dom0, g) = with_guest(5);
    write(&mut xs, g, "x", "1").unwrap();
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"x\0n5\0r6\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"x\0n6\0"), Err(XsError::Eperm), "no owner change");
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"x\0q5\0"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"x\0"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"x\0n5\0r1\0r2\0r3\0r4\0r6\0"), Err(XsError::Enospc));
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"nothere\0n5\0"), Err(XsError::Enoent));
    // A writer that is not the owner may not change permissions.
    write(&mut xs, dom0, "/w", "").unwrap();
    req(&mut xs, dom0, MsgType::SetPerms, 0, b"/w\0n0\0w5\0").unwrap();
    assert_eq!(req(&mut xs, g, MsgType::SetPerms, 0, b"/w\0n0\0b5\0"), Err(XsError::Eacces));
    // dom0 may give a node away.
    assert_eq!(req(&mut xs, dom0, MsgType::SetPerms, 0, b"/w\0n5\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, g, "/w"), Ok(vec![]));
}

#[test]
fn mkdir_rm_directory() {
    let (mut xs, dom0, g) = with_guest(5);
    assert_eq!(req(&mut xs, g, MsgType::Mkdir, 0, &nul("a/b/c")), Ok(b"OK\0".to_vec()));
    write(&mut xs, g, "a/b/c", "v").unwrap();
    assert_eq!(req(&mut xs, g, MsgType::Mkdir, 0, &nul("a/b/c")), Ok(b"OK\0".to_vec()), "exists: unchanged");
    assert_eq!(read(&mut xs, g, "a/b/c"), Ok(b"v".to_vec()));
    write(&mut xs, g, "a/b/d", "").unwrap();
    assert_eq!(req(&mut xs, g, MsgType::Directory, 0, &nul("a/b")), Ok(b"c\0d\0".to_vec()));
    assert_eq!(req(&mut xs, g, MsgType::Directory, 0, &nul("a/b/c")), Ok(vec![]));
    assert_eq!(req(&mut xs, g, MsgType::Rm, 0, &nul("a")), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, g, "a/b/c"), Err(XsError::Enoent));
    assert_eq!(req(&mut xs, g, MsgType::Rm, 0, &nul("a")), Ok(b"OK\0".to_vec()), "parent exists");
    assert_eq!(req(&mut xs, g, MsgType::Rm, 0, &nul("a/b")), Err(XsError::Enoent), "parent missing");
    assert_eq!(req(&mut xs, dom0, MsgType::Rm, 0, &nul("/")), Err(XsError::Einval));
    assert_eq!(xs.tree().owned(5), 1, "only the home is left");
}

#[test]
fn directory_part_pages_through_big_directories() {
    let (mut xs, dom0, _) = with_guest(5);
    let mut names = Vec::new();
    for i in 0..300 {
        let n = format!("child-with-a-long-name-{i:04}");
        write(&mut xs, dom0, &format!("/big/{n}"), "").unwrap();
        names.push(n);
    }
    assert_eq!(req(&mut xs, dom0, MsgType::Directory, 0, &nul("/big")), Err(XsError::E2big));
    let mut got = Vec::new();
    let mut offset = 0usize;
    let mut generation = None;
    loop {
        let reply = req(&mut xs, dom0, MsgType::DirectoryPart, 0, format!("/big\0{offset}\0").as_bytes()).unwrap();
        assert!(reply.len() <= 4096);
        let mut parts = reply.split(|&b| b == 0);
        let g = parts.next().unwrap().to_vec();
        assert_eq!(*generation.get_or_insert(g.clone()), g);
        let body = &reply[g.len() + 1..];
        offset += body.len();
        let done = body.ends_with(&[0, 0]) || body == [0];
        for n in body.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            got.push(String::from_utf8(n.to_vec()).unwrap());
        }
        if done {
            break;
        }
    }
    assert_eq!(got, names);
    assert_eq!(req(&mut xs, dom0, MsgType::DirectoryPart, 0, b"/big\x0099999\0"), Err(XsError::Einval));
}

#[test]
fn watches_fire_first_and_on_changes_with_relative_paths() {
    let (mut xs, dom0, g) = with_guest(5);
    let (r, ev) = call(&mut xs, g, MsgType::Watch, 0, b"device\0tok\0");
    assert_eq!(r, Ok(b"OK\0".to_vec()));
    assert_eq!(ev, vec![b"device\0tok\0".to_vec()]);
    assert_eq!(req(&mut xs, g, MsgType::Watch, 0, b"device\0tok\0"), Err(XsError::Eexist));
    write(&mut xs, dom0, "/local/domain/5/device/vbd/768", "x").unwrap();
    let events: Vec<_> = common::drain(&mut xs, g).into_iter().map(|(_, p)| p).collect();
    assert_eq!(events, vec![b"device/vbd/768\0tok\0".to_vec()]);
    // Removal fires for the removed node.
    req(&mut xs, dom0, MsgType::Rm, 0, &nul("/local/domain/5/device")).unwrap();
    let events: Vec<_> = common::drain(&mut xs, g).into_iter().map(|(_, p)| p).collect();
    assert_eq!(events, vec![b"device\0tok\0".to_vec()]);
    assert_eq!(req(&mut xs, g, MsgType::Unwatch, 0, b"device\0tok\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(req(&mut xs, g, MsgType::Unwatch, 0, b"device\0tok\0"), Err(XsError::Enoent));
    write(&mut xs, dom0, "/local/domain/5/device", "y").unwrap();
    assert!(common::drain(&mut xs, g).is_empty());
}

#[test]
fn watch_events_respect_read_permission() {
    let (mut xs, dom0, g) = with_guest(5);
    call(&mut xs, g, MsgType::Watch, 0, b"/\0all\0").0.unwrap();
    write(&mut xs, dom0, "/secret", "s").unwrap();
    assert!(common::drain(&mut xs, g).is_empty(), "a guest learns nothing of nodes it cannot read");
    write(&mut xs, g, "mine", "m").unwrap();
    assert_eq!(common::drain(&mut xs, g).len(), 0, "drained by write()");
}

#[test]
fn losing_read_permission_is_still_heard() {
    let (mut xs, dom0, g) = with_guest(5);
    write(&mut xs, dom0, "/pub", "v").unwrap();
    req(&mut xs, dom0, MsgType::SetPerms, 0, b"/pub\0n0\0r5\0").unwrap();
    call(&mut xs, g, MsgType::Watch, 0, b"/pub\0t\0").0.unwrap();
    req(&mut xs, dom0, MsgType::SetPerms, 0, b"/pub\0n0\0").unwrap();
    let ev: Vec<_> = common::drain(&mut xs, g).into_iter().map(|(_, p)| p).collect();
    assert_eq!(ev, vec![b"/pub\0t\0".to_vec()]);
    write(&mut xs, dom0, "/pub", "w").unwrap();
    assert!(common::drain(&mut xs, g).is_empty());
}

#[test]
fn unknown_transaction_ids_are_enoent_except_for_watches() {
    let (mut xs, _, g) = with_guest(5);
    assert_eq!(req(&mut xs, g, MsgType::GetDomainPath, 9, b"5\0"), Err(XsError::Enoent));
    assert_eq!(req(&mut xs, g, MsgType::TransactionStart, 9, b"\0"), Err(XsError::Enoent));
    assert_eq!(req(&mut xs, g, MsgType::TransactionEnd, 0, b"T\0"), Err(XsError::Enoent));
    assert_eq!(req(&mut xs, g, MsgType::Watch, 9, b"x\0t\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(req(&mut xs, g, MsgType::Unwatch, 9, b"x\0t\0"), Ok(b"OK\0".to_vec()));
}

#[test]
fn removal_fires_watches_on_removed_descendants() {
    let (mut xs, dom0, _) = with_guest(5);
    write(&mut xs, dom0, "/a/b/c", "").unwrap();
    call(&mut xs, dom0, MsgType::Watch, 0, b"/a/b/c\0t1\0").0.unwrap();
    call(&mut xs, dom0, MsgType::Watch, 0, b"/a/b/c/d\0t2\0").0.unwrap();
    let (_, ev) = call(&mut xs, dom0, MsgType::Rm, 0, &nul("/a"));
    assert_eq!(ev, vec![b"/a/b/c\0t1\0".to_vec()]);
}

#[test]
fn special_watches_and_domain_operations() {
    let mut xs = Xenstore::new(Quotas::default());
    let dom0 = xs.connect(0, true);
    call(&mut xs, dom0, MsgType::Watch, 0, b"@introduceDomain\0i\0").0.unwrap();
    call(&mut xs, dom0, MsgType::Watch, 0, b"@releaseDomain\0r\0").0.unwrap();
    let (r, ev) = call(&mut xs, dom0, MsgType::Introduce, 0, b"7\x00233473\x0012\x00");
    assert_eq!(r, Ok(b"OK\0".to_vec()));
    assert_eq!(ev, vec![b"@introduceDomain\0i\0".to_vec()]);
    let conn = xs.domains()[&7].conn;
    assert_eq!(xs.take_actions(), vec![Action::Introduce { domid: 7, gfn: 233473, port: 12, conn }]);
    assert_eq!(req(&mut xs, dom0, MsgType::Introduce, 0, b"7\x001\x001\x00"), Err(XsError::Eexist));
    assert_eq!(req(&mut xs, dom0, MsgType::Introduce, 0, b"0\x001\x001\x00"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, dom0, MsgType::Introduce, 0, b"65535\x001\x001\x00"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, dom0, MsgType::Introduce, 0, b"8\x001\x00"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, dom0, MsgType::IsDomainIntroduced, 0, b"7\0"), Ok(b"T\0".to_vec()));
    assert_eq!(req(&mut xs, dom0, MsgType::IsDomainIntroduced, 0, b"8\0"), Ok(b"F\0".to_vec()));
    assert_eq!(req(&mut xs, dom0, MsgType::GetDomainPath, 0, b"7\0"), Ok(b"/local/domain/7\0".to_vec()));
    assert_eq!(req(&mut xs, conn, MsgType::GetDomainPath, 0, b"7\0"), Ok(b"/local/domain/7\0".to_vec()));
    assert_eq!(req(&mut xs, dom0, MsgType::Resume, 0, b"7\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(req(&mut xs, dom0, MsgType::Resume, 0, b"9\0"), Err(XsError::Enoent));
    // A guest may do none of these.
    for (ty, p) in [
        (MsgType::Introduce, &b"9\x001\x001\x00"[..]),
        (MsgType::Release, b"7\0"),
        (MsgType::IsDomainIntroduced, b"7\0"),
        (MsgType::Resume, b"7\0"),
        (MsgType::SetTarget, b"7\x007\x00"),
        (MsgType::Control, b"check\0"),
    ] {
        assert_eq!(req(&mut xs, conn, ty, 0, p), Err(XsError::Eacces), "{ty:?}");
    }
    let (r, ev) = call(&mut xs, dom0, MsgType::Release, 0, b"7\0");
    assert_eq!(r, Ok(b"OK\0".to_vec()));
    assert_eq!(ev, vec![b"@releaseDomain\0r\0".to_vec()]);
    assert_eq!(xs.take_actions(), vec![Action::Release { domid: 7, conn }]);
    assert_eq!(req(&mut xs, dom0, MsgType::Release, 0, b"7\0"), Err(XsError::Enoent));
}

#[test]
fn domain_death_fires_release_watch() {
    let (mut xs, dom0, _) = with_guest(5);
    call(&mut xs, dom0, MsgType::Watch, 0, b"@releaseDomain\0r\0").0.unwrap();
    assert!(xs.domain_gone(5));
    xs.flush_events();
    let events: Vec<_> = common::drain(&mut xs, dom0).into_iter().map(|(_, p)| p).collect();
    assert_eq!(events, vec![b"@releaseDomain\0r\0".to_vec()]);
    assert!(!xs.domain_gone(5));
}

#[test]
fn set_target_gives_the_target_domains_rights() {
    let (mut xs, dom0, _) = with_guest(5);
    req(&mut xs, dom0, MsgType::Introduce, 0, b"6\x001\x002\x00").unwrap();
    let dm = xs.domains()[&6].conn;
    assert_eq!(read(&mut xs, dm, "/local/domain/5"), Err(XsError::Eacces));
    assert_eq!(req(&mut xs, dom0, MsgType::SetTarget, 0, b"6\x005\x00"), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, dm, "/local/domain/5"), Ok(vec![]));
    assert_eq!(req(&mut xs, dom0, MsgType::SetTarget, 0, b"6\x009\x00"), Err(XsError::Enoent));
}

#[test]
fn control_and_unknown_types() {
    let (mut xs, dom0, g) = with_guest(5);
    assert_eq!(req(&mut xs, dom0, MsgType::Control, 0, b"print\0hello\0"), Ok(b"OK\0".to_vec()));
    assert!(req(&mut xs, dom0, MsgType::Control, 0, b"quota\0").unwrap().starts_with(b"Quota settings:"));
    assert_eq!(req(&mut xs, dom0, MsgType::Control, 0, b"frob\0"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, g, MsgType::WatchEvent, 0, b"x\0"), Err(XsError::Einval));
    xs.handle(g, keel_xenstore::Header { ty: 20, req_id: 1, tx_id: 0, len: 0 }, &[]);
    xs.handle(g, keel_xenstore::Header { ty: 0xffff, req_id: 2, tx_id: 0, len: 0 }, &[]);
    let replies = common::drain(&mut xs, g);
    assert_eq!(replies.len(), 2);
    for (h, p) in replies {
        assert_eq!(h.ty, MsgType::Error as u32);
        assert_eq!(p, b"ENOSYS\0");
    }
}

#[test]
fn transactions_commit_abort_and_conflict() {
    let (mut xs, dom0, g) = with_guest(5);
    let t: u32 = std::str::from_utf8(&req(&mut xs, g, MsgType::TransactionStart, 0, b"\0").unwrap()[..])
        .unwrap()
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_ne!(t, 0);
    let mut p = nul("a");
    p.extend_from_slice(b"1");
    assert_eq!(req(&mut xs, g, MsgType::Write, t, &p), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, g, "a"), Err(XsError::Enoent), "invisible outside");
    assert_eq!(req(&mut xs, g, MsgType::Read, t, &nul("a")), Ok(b"1".to_vec()));
    assert_eq!(req(&mut xs, g, MsgType::TransactionEnd, t, b"T\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, g, "a"), Ok(b"1".to_vec()));
    assert_eq!(req(&mut xs, g, MsgType::TransactionEnd, t, b"T\0"), Err(XsError::Enoent));
    assert_eq!(req(&mut xs, g, MsgType::Read, t, &nul("a")), Err(XsError::Enoent), "unknown tx");
    // A conflicting write by dom0 makes the commit fail.
    let t2 = String::from_utf8(req(&mut xs, g, MsgType::TransactionStart, 0, b"\0").unwrap()).unwrap();
    let t2: u32 = t2.trim_end_matches('\0').parse().unwrap();
    req(&mut xs, g, MsgType::Read, t2, &nul("a")).unwrap();
    write(&mut xs, dom0, "/local/domain/5/a", "2").unwrap();
    let mut p = nul("b");
    p.extend_from_slice(b"x");
    req(&mut xs, g, MsgType::Write, t2, &p).unwrap();
    assert_eq!(req(&mut xs, g, MsgType::TransactionEnd, t2, b"T\0"), Err(XsError::Eagain));
    assert_eq!(read(&mut xs, g, "b"), Err(XsError::Enoent));
    // Abort discards; a bad verdict is EINVAL; nested start is EBUSY.
    let t3: u32 = String::from_utf8(req(&mut xs, g, MsgType::TransactionStart, 0, b"\0").unwrap())
        .unwrap()
        .trim_end_matches('\0')
        .parse()
        .unwrap();
    assert_eq!(req(&mut xs, g, MsgType::TransactionStart, t3, b"\0"), Err(XsError::Ebusy));
    req(&mut xs, g, MsgType::Write, t3, &p).unwrap();
    assert_eq!(req(&mut xs, g, MsgType::TransactionEnd, t3, b"X\0"), Err(XsError::Einval));
    assert_eq!(req(&mut xs, g, MsgType::TransactionEnd, t3, b"F\0"), Ok(b"OK\0".to_vec()));
    assert_eq!(read(&mut xs, g, "b"), Err(XsError::Enoent));
}

#[test]
fn transaction_watch_events_fire_on_commit() {
    let (mut xs, dom0, g) = with_guest(5);
    call(&mut xs, dom0, MsgType::Watch, 0, b"/local/domain/5\0w\0").0.unwrap();
    let t = String::from_utf8(req(&mut xs, g, MsgType::TransactionStart, 0, b"\0").unwrap()).unwrap();
    let t: u32 = t.trim_end_matches('\0').parse().unwrap();
    let mut p = nul("k");
    p.extend_from_slice(b"v");
    req(&mut xs, g, MsgType::Write, t, &p).unwrap();
    assert!(common::drain(&mut xs, dom0).is_empty());
    req(&mut xs, g, MsgType::TransactionEnd, t, b"T\0").unwrap();
    let ev: Vec<_> = common::drain(&mut xs, dom0).into_iter().map(|(_, p)| p).collect();
    assert_eq!(ev, vec![b"/local/domain/5/k\0w\0".to_vec()]);
}

#[test]
fn quotas_refuse_a_flooding_guest_and_others_keep_going() {
    let (mut xs, dom0, g) = with_guest(5);
    req(&mut xs, dom0, MsgType::Mkdir, 0, b"/local/domain/6\0").unwrap();
    req(&mut xs, dom0, MsgType::SetPerms, 0, b"/local/domain/6\0n6\0").unwrap();
    req(&mut xs, dom0, MsgType::Introduce, 0, b"6\x001\x001\x00").unwrap();
    let other = xs.domains()[&6].conn;
    let q = Quotas::default();
    // Entries (the home counts as one; directories of 50 keep each node small).
    let mut refused = None;
    for i in 0..q.entries_per_domain + 5 {
        if let Err(e) = req(&mut xs, g, MsgType::Mkdir, 0, &nul(&format!("d{}/n{i}", i / 50))) {
            refused = Some(e);
            break;
        }
    }
    assert_eq!(refused, Some(XsError::Enospc));
    assert!((q.entries_per_domain - 1..=q.entries_per_domain).contains(&xs.tree().owned(5)));
    // A directory too big for the node-size quota.
    let mut refused = None;
    for i in 0..200 {
        if let Err(e) = req(&mut xs, g, MsgType::Rm, 0, &nul(&format!("d{}", 19 - i % 20))) {
            panic!("{e:?}");
        }
        if let Err(e) = req(&mut xs, g, MsgType::Mkdir, 0, &nul(&format!("wide/a-rather-long-child-name-{i:03}"))) {
            refused = Some(e);
            break;
        }
    }
    assert_eq!(refused, Some(XsError::Enospc));
    write(&mut xs, g, "n0", "").unwrap();
    // Node size.
    let big = "v".repeat(q.node_size + 1);
    assert_eq!(write(&mut xs, g, "n0", &big), Err(XsError::Enospc));
    assert_eq!(write(&mut xs, g, "n0", &big[1..]), Ok(b"OK\0".to_vec()));
    // Watches.
    for i in 0..q.watches_per_domain {
        req(&mut xs, g, MsgType::Watch, 0, format!("n0\0t{i}\0").as_bytes()).unwrap();
    }
    assert_eq!(req(&mut xs, g, MsgType::Watch, 0, b"n0\0extra\0"), Err(XsError::E2big));
    // Transactions.
    for _ in 0..q.transactions_per_domain {
        req(&mut xs, g, MsgType::TransactionStart, 0, b"\0").unwrap();
    }
    assert_eq!(req(&mut xs, g, MsgType::TransactionStart, 0, b"\0"), Err(XsError::Enospc));
    // The other guest and dom0 are still served.
    assert_eq!(write(&mut xs, other, "ok", "1"), Ok(b"OK\0".to_vec()));
    assert_eq!(req(&mut xs, other, MsgType::TransactionStart, 0, b"\0").map(|_| ()), Ok(()));
    assert_eq!(write(&mut xs, dom0, "/local/domain/5/by-dom0", "1"), Ok(b"OK\0".to_vec()));
    // Releasing the guest frees its watches and transactions.
    req(&mut xs, dom0, MsgType::Release, 0, b"5\0").unwrap();
    xs.handle(g, keel_xenstore::Header { ty: 2, req_id: 1, tx_id: 0, len: 3 }, b"n0\0");
    assert!(xs.pending_output(g).is_none(), "the connection is gone");
    assert!(!xs.accepts_requests(g));
}

#[test]
fn transaction_node_quota() {
    let q = Quotas { nodes_per_transaction: 8, ..Quotas::default() };
    let mut xs = Xenstore::new(q);
    let dom0 = xs.connect(0, false);
    let t = String::from_utf8(req(&mut xs, dom0, MsgType::TransactionStart, 0, b"\0").unwrap()).unwrap();
    let t: u32 = t.trim_end_matches('\0').parse().unwrap();
    let mut last = Ok(vec![]);
    for i in 0..10 {
        last = req(&mut xs, dom0, MsgType::Write, t, format!("/k{i}\0v").as_bytes());
        if last.is_err() {
            break;
        }
    }
    assert_eq!(last, Err(XsError::Enospc));
}

#[test]
fn outstanding_replies_hold_further_requests() {
    let (mut xs, _, g) = with_guest(5);
    for i in 0..Quotas::default().outstanding_requests {
        assert!(xs.accepts_requests(g), "{i}");
        xs.handle(g, keel_xenstore::Header { ty: 2, req_id: 1, tx_id: 0, len: 2 }, b"x\0");
    }
    assert!(!xs.accepts_requests(g));
    common::drain(&mut xs, g);
    assert!(xs.accepts_requests(g));
}

#[test]
fn unread_watch_events_are_capped() {
    let (mut xs, dom0, g) = with_guest(5);
    req(&mut xs, g, MsgType::Watch, 0, b"k\0t\0").unwrap();
    common::drain(&mut xs, g);
    for i in 0..1000 {
        write(&mut xs, dom0, "/local/domain/5/k", &i.to_string()).unwrap();
    }
    assert_eq!(common::drain(&mut xs, g).len(), Quotas::default().queued_events);
}

#[test]
fn reset_watches_drops_watches_and_transactions() {
    let (mut xs, dom0, g) = with_guest(5);
    req(&mut xs, g, MsgType::Watch, 0, b"k\0t\0").unwrap();
    let t = String::from_utf8(req(&mut xs, g, MsgType::TransactionStart, 0, b"\0").unwrap()).unwrap();
    let t: u32 = t.trim_end_matches('\0').parse().unwrap();
    assert_eq!(req(&mut xs, g, MsgType::ResetWatches, 0, b"\0"), Ok(b"OK\0".to_vec()));
    write(&mut xs, dom0, "/local/domain/5/k", "1").unwrap();
    assert!(common::drain(&mut xs, g).is_empty());
    assert_eq!(req(&mut xs, g, MsgType::Read, t, b"k\0"), Err(XsError::Enoent));
}
