//! `hbd import` against the project's own Heartbeat trees in contrib/legacy-import:
//! every tree's output is compared byte for byte with the cluster.toml and
//! report.txt beside it (HBD_BLESS=1 rewrites them), every output passes the
//! same validation as `hbd check`, and every malformed tree fails with the
//! error in its error.txt, never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use hbd::import::{self, Options, SimHost};

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/legacy-import")
}

fn bless() -> bool {
    std::env::var_os("HBD_BLESS").is_some_and(|v| v == "1")
}

fn opts() -> Options {
    Options {
        node_dir: Some(PathBuf::from("/etc/ha.d")),
        ..Options::default()
    }
}

/// The simulated node each tree is imported on.
fn host_for(tree: &str) -> SimHost {
    let h = match tree {
        "ucast-pair-alpha" => SimHost::new("alpha").with_addr("eth1", "10.0.0.1/24"),
        "ucast-pair-beta" => SimHost::new("beta.example.com").with_addr("eth1", "10.0.0.2/24"),
        _ => SimHost::new("workstation"),
    };
    // Git does not keep modes beyond the x bit; pin them so the report is stable.
    if tree == "crc-authkeys" || tree == "quoted-secret-inactive" {
        h.with_mode(0o644)
    } else {
        h.with_mode(0o600)
    }
}

fn compare(path: &Path, actual: &str) {
    if bless() {
        fs::write(path, actual).expect("write expectation");
        return;
    }
    let expected = fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with HBD_BLESS=1 to create it)",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "{} differs from the import (HBD_BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

const TREES: &[&str] = &[
    "active-active",
    "bcast-serial",
    "crc-authkeys",
    "crlf-endings",
    "drbd-mailto",
    "legacy-defaults",
    "mcast-ms",
    "ping-ipfail",
    "quoted-secret",
    "quoted-secret-inactive",
    "stonith-host",
    "ucast-pair-alpha",
    "ucast-pair-beta",
];

#[test]
fn every_tree_is_listed() {
    let mut found: Vec<String> = fs::read_dir(contrib())
        .expect("contrib/legacy-import")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("ha.cf").is_file())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    found.sort();
    assert_eq!(found, TREES);
}

#[test]
fn trees_import_as_expected() {
    for tree in TREES {
        let dir = contrib().join(tree);
        let got = import::import(&dir, &opts(), &host_for(tree))
            .unwrap_or_else(|e| panic!("{tree}: {e}"));
        hbd::config::parse_str(&got.toml, Path::new("cluster.toml"))
            .unwrap_or_else(|e| panic!("{tree}: output does not validate: {e}"));
        compare(&dir.join("cluster.toml"), &got.toml);
        compare(&dir.join("report.txt"), &got.report.render());
        // The key file is hbd's format and loads back.
        let (keys, _) =
            hbd::config::keys::parse(got.key.file_text().as_bytes(), Path::new("authkey"))
                .unwrap_or_else(|e| panic!("{tree}: key file: {e}"));
        assert!(keys.contains_key(&got.config.auth.key_id), "{tree}");
    }
}

#[test]
fn ucast_pair_gives_identical_output_on_both_nodes() {
    let a = import::import(
        &contrib().join("ucast-pair-alpha"),
        &opts(),
        &host_for("ucast-pair-alpha"),
    )
    .expect("alpha");
    let b = import::import(
        &contrib().join("ucast-pair-beta"),
        &opts(),
        &host_for("ucast-pair-beta"),
    )
    .expect("beta");
    assert_eq!(a.toml, b.toml);
    assert_eq!(a.key, b.key, "md5/sha1 secrets carry over identically");
    assert!(a.toml.contains("address.ucast-eth1 = \"10.0.0.1\""));
    assert!(a.toml.contains("address.ucast-eth1 = \"10.0.0.2\""));
}

#[test]
fn ucast_pair_converts_off_node_byte_identical_to_on_node() {
    let alpha = contrib().join("ucast-pair-alpha");
    let beta = contrib().join("ucast-pair-beta");
    let on_a = import::import(&alpha, &opts(), &host_for("ucast-pair-alpha")).expect("alpha");
    let on_b = import::import(&beta, &opts(), &host_for("ucast-pair-beta")).expect("beta");
    assert_eq!(on_a.toml, on_b.toml);
    // A workstation: no interface matches, /etc/hosts knows nothing.
    let ws = SimHost::new("workstation").with_mode(0o600);
    // Without help the import cannot know this node's address, and says what to do.
    let e = import::import(
        &alpha,
        &Options {
            node: Some("alpha".into()),
            ..opts()
        },
        &ws,
    )
    .expect_err("no address");
    let e = e.to_string();
    assert!(e.starts_with("ha.cf:7: "), "{e}");
    assert!(e.contains("--address ucast-eth1=ADDRESS"), "{e}");
    // Both trees at once, in either order, with or without --node: the same bytes.
    for (dirs, nodes) in [
        (vec![alpha.clone(), beta.clone()], vec![]),
        (vec![beta.clone(), alpha.clone()], vec![]),
        (
            vec![alpha.clone(), beta.clone()],
            vec!["alpha".to_string(), "beta".to_string()],
        ),
    ] {
        let got = import::import_many(&dirs, &nodes, &opts(), &ws)
            .unwrap_or_else(|e| panic!("{dirs:?}: {e}"));
        assert_eq!(got.toml, on_a.toml, "{dirs:?}");
        assert_eq!(got.key, on_a.key);
        // The report names each tree's files.
        assert!(
            got.report
                .entries
                .iter()
                .any(|e| e.file.ends_with("ucast-pair-beta/ha.cf")),
            "{:?}",
            got.report
        );
    }
    // (--node paired the wrong way round gives the mirror image, consistently: nothing
    // in the trees can tell, so the report says where each address came from.)
    // One tree with --address (by link name or by interface): the same bytes.
    for link in ["ucast-eth1", "eth1"] {
        let o = Options {
            node: Some("beta".into()),
            addresses: vec![(link.into(), "10.0.0.2".parse().expect("ip"))],
            ..opts()
        };
        let got = import::import(&beta, &o, &ws).expect("beta with --address");
        assert_eq!(got.toml, on_a.toml);
        assert!(got.report.mentions("as --address says"));
    }
    let o = Options {
        node: Some("beta".into()),
        addresses: vec![("ucast-eth9".into(), "10.0.0.2".parse().expect("ip"))],
        ..opts()
    };
    let e = import::import(&beta, &o, &ws).expect_err("no such link");
    assert!(
        e.to_string().contains("ucast links: ucast-eth1 (eth1)"),
        "{e}"
    );

    // Through the command line on this machine (whatever its interfaces): the same bytes.
    let bin = env!("CARGO_BIN_EXE_hbd");
    let out = std::process::Command::new(bin)
        .arg("import")
        .arg(&alpha)
        .arg(&beta)
        .output()
        .expect("run hbd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), on_a.toml);
    let out = std::process::Command::new(bin)
        .arg("import")
        .arg(&alpha)
        .args(["--node", "alpha", "--address", "ucast-eth1=10.0.0.1"])
        .output()
        .expect("run hbd");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), on_a.toml);
}

#[test]
fn two_simulated_nodes_with_mirrored_ucast_lines_agree() {
    // Three links, mirrored ucast lines, addresses the hosts find on their own interfaces,
    // and a third interface where only /etc/hosts knows the local address.
    let tmp = tempfile::tempdir().expect("tempdir");
    let cf = |peer1: &str, peer2: &str| {
        format!(
            "keepalive 1\ndeadtime 10\nudpport 700\nucast eth1 {peer1}\nucast eth2 {peer2}\nbcast eth0\nnode n1\nnode n2\n"
        )
    };
    let d1 = tmp.path().join("n1");
    let d2 = tmp.path().join("n2");
    for (d, text) in [
        (&d1, cf("10.1.0.2", "10.2.0.2")),
        (&d2, cf("10.1.0.1", "10.2.0.1")),
    ] {
        fs::create_dir_all(d).expect("mkdir");
        fs::write(d.join("ha.cf"), text).expect("write");
        fs::write(d.join("haresources"), "n1 10.9.0.1/24/eth0 nginx\n").expect("write");
        fs::write(
            d.join("authkeys"),
            "auth 1\n1 sha1 shared-secret-between-n1-n2\n",
        )
        .expect("write");
    }
    let h1 = SimHost::new("n1")
        .with_addr("eth1", "192.168.0.1/24") // another subnet first: must not be picked
        .with_addr("eth1", "10.1.0.1/24")
        .with_host("n1", "10.2.0.1");
    let h2 = SimHost::new("n2")
        .with_addr("eth1", "10.1.0.2/24")
        .with_addr("eth2", "10.2.0.2/24");
    let a = import::import(&d1, &opts(), &h1).expect("n1");
    let b = import::import(&d2, &opts(), &h2).expect("n2");
    assert_eq!(a.toml, b.toml);
    for want in [
        "address.ucast-eth1 = \"10.1.0.1\"",
        "address.ucast-eth2 = \"10.2.0.1\"",
        "address.ucast-eth1 = \"10.1.0.2\"",
        "address.ucast-eth2 = \"10.2.0.2\"",
        "port = 700",
    ] {
        assert!(a.toml.contains(want), "{want} missing:\n{}", a.toml);
    }
    // On a host that is not a node, ucast cannot be resolved: a clear error.
    let e = import::import(&d1, &opts(), &SimHost::new("laptop")).expect_err("not a node");
    assert!(e.to_string().starts_with("ha.cf:4: "), "{e}");
    // ...unless --node says which node it is and /etc/hosts knows the addresses.
    let o = Options {
        node: Some("N1".into()),
        ..opts()
    };
    let laptop = SimHost::new("laptop")
        .with_host("n1", "10.1.0.1")
        .with_host("n2", "10.1.0.2");
    let e = import::import(&d1, &o, &laptop).expect_err("eth2 differs");
    assert!(e.to_string().contains("eth2"), "{e}");
}

#[test]
fn malformed_trees_fail_with_clear_errors() {
    let root = contrib().join("malformed");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&root)
        .expect("malformed")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 20);
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let host = SimHost::new("a")
            .with_addr("eth1", "10.0.0.1/24")
            .with_mode(0o600);
        let err = match import::import(&dir, &opts(), &host) {
            Ok(i) => panic!("{name}: imported but should fail:\n{}", i.toml),
            Err(e) => e.to_string(),
        };
        // Relative to the tree, so the expectation does not depend on the checkout path.
        let err = err.replace(&format!("{}", dir.display()), "DIR");
        assert!(!err.contains('\n'), "{name}: one line: {err}");
        assert!(
            err.starts_with("ha.cf")
                || err.starts_with("haresources")
                || err.starts_with("authkeys"),
            "{name}: names the file: {err}"
        );
        compare(&dir.join("error.txt"), &format!("{err}\n"));
    }
}

#[test]
fn cli_refuses_to_overwrite_and_writes_key_0600() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("cluster.toml");
    let key = tmp.path().join("authkey");
    let bin = env!("CARGO_BIN_EXE_hbd");
    let run = |force: bool| {
        let mut c = std::process::Command::new(bin);
        c.arg("import")
            .arg(contrib().join("bcast-serial"))
            .arg("--output")
            .arg(&out)
            .arg("--key-output")
            .arg(&key);
        if force {
            c.arg("--force");
        }
        c.output().expect("run hbd")
    };
    let first = run(false);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("ha.cf:2: dropped: logfacility local0"),
        "{stderr}"
    );
    let mode = fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let second = run(false);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("--force"));
    assert!(run(true).status.success());
    // `hbd check` accepts the pair.
    let check = std::process::Command::new(bin)
        .arg("check")
        .arg("-c")
        .arg(&out)
        .arg("--no-key")
        .output()
        .expect("run hbd check");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // An unusable input: exit 1, one error naming file:line.
    let bad = std::process::Command::new(bin)
        .arg("import")
        .arg(contrib().join("malformed/bad-ip"))
        .output()
        .expect("run hbd");
    assert_eq!(bad.status.code(), Some(1));
    let e = String::from_utf8_lossy(&bad.stderr);
    assert!(e.starts_with("hbd: error: haresources:1: "), "{e}");
    assert!(bad.stdout.is_empty());
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Arbitrary bytes, and arbitrary lines built from Heartbeat's own words, give
    /// errors or results, never a panic.
    #[test]
    fn parsers_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
        words in proptest::collection::vec(
            proptest::sample::select(vec![
                "node", "bcast", "ucast", "mcast", "serial", "baud", "udpport", "keepalive",
                "deadtime", "auth", "1", "sha1", "crc", "IPaddr::", "Filesystem::", "::", "/",
                "10.0.0.1", "239.0.0.1", "eth0", "\\", "\n", "#", ",", " ", "\r\n", "ms", "a",
            ]),
            0..40,
        ),
    ) {
        let text: String = words.concat();
        for input in [bytes.as_slice(), text.as_bytes()] {
            let mut r = import::Report::default();
            let _ = import::hacf::parse(input, "ha.cf", &mut r);
            let _ = import::haresources::parse(input, "haresources", &mut r);
            let _ = import::authkeys::parse(input, "authkeys", &mut r);
        }
        // And through the whole import, as haresources and as authkeys.
        let tmp = tempfile::tempdir().expect("tempdir");
        fs::write(tmp.path().join("ha.cf"), "bcast eth0\nbcast eth1\nnode a b\n").expect("write");
        fs::write(tmp.path().join("haresources"), format!("a {text}")).expect("write");
        fs::write(
            tmp.path().join("authkeys"),
            "auth 1\n1 sha1 secret-secret-secret\n",
        )
        .expect("write");
        if let Ok(got) = import::import(tmp.path(), &opts(), &SimHost::new("a")) {
            proptest::prop_assert!(hbd::config::parse_str(&got.toml, Path::new("c.toml")).is_ok());
        }
    }
}

/// Import an ha.cf (with a one-line haresources and an sha1 authkeys) from a temporary tree.
fn import_hacf(hacf: &str) -> import::Imported {
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(tmp.path().join("ha.cf"), hacf).expect("ha.cf");
    fs::write(tmp.path().join("haresources"), "a 10.0.0.5 nginx\n").expect("haresources");
    fs::write(
        tmp.path().join("authkeys"),
        "auth 1\n1 sha1 a-long-enough-secret\n",
    )
    .expect("authkeys");
    import::import(
        tmp.path(),
        &opts(),
        &SimHost::new("workstation").with_mode(0o600),
    )
    .expect("import")
}

#[test]
fn stonith_devices_map_to_fencing_where_it_is_clean() {
    // Attached to a: it fences b, the only node a takes over from.
    let got = import_hacf("bcast eth0\nnode a b\nstonith_host a rps10 /dev/ttyS1 b 0\n");
    let fence = |g: &import::Imported, i: usize| g.config.nodes[i].fence.clone();
    assert_eq!(fence(&got, 0), None);
    assert_eq!(
        fence(&got, 1).unwrap().command,
        [
            "/usr/sbin/stonith",
            "-t",
            "rps10",
            "-p",
            "/dev/ttyS1 b 0",
            "-T",
            "reset",
            "b"
        ]
    );
    assert!(
        got.report
            .render()
            .contains("ha.cf:3: mapped: stonith_host a rps10 → [[node]] fence")
    );
    // One device for the whole cluster, from a file: every node.
    let got =
        import_hacf("bcast eth0\nnode a b c\nstonith baytech /etc/ha.d/conf/stonith.baytech\n");
    for i in 0..3 {
        let c = fence(&got, i).unwrap().command;
        assert_eq!(c[3..5], ["-F", "/etc/ha.d/conf/stonith.baytech"]);
    }
    // Attached to one node of three: hbd may fence from another, so it is not mapped.
    let got = import_hacf("bcast eth0\nnode a b c\nstonith_host a rps10 /dev/ttyS1 b 0\n");
    assert!(got.config.nodes.iter().all(|n| n.fence.is_none()));
    let r = got.report.render();
    assert!(r.contains("ha.cf:3: dropped: stonith_host a rps10 — the device is usable from a only, but in a cluster of 3 nodes"), "{r}");
    // Attached to a host that is no node.
    let got = import_hacf("bcast eth0\nnode a b\nstonith_host zz rps10 /dev/ttyS1 b 0\n");
    assert!(
        got.report
            .render()
            .contains("zz is not a node of this cluster")
    );
    // Incomplete: an error with its line.
    let tmp = tempfile::tempdir().expect("tempdir");
    fs::write(
        tmp.path().join("ha.cf"),
        "bcast eth0\nnode a b\nstonith_host a\n",
    )
    .unwrap();
    fs::write(tmp.path().join("haresources"), "a 10.0.0.5\n").unwrap();
    let e = import::import(tmp.path(), &opts(), &SimHost::new("w")).unwrap_err();
    assert!(e.to_string().contains("ha.cf:3"), "{e}");
}
