//! `hbd import` over the shared corpus of 28 real-world Heartbeat trees
//! (../shared/import-corpus beside the repository; HBD_IMPORT_CORPUS overrides).
//!
//! Each tree has an expected outcome taken from its SOURCE.txt: positive trees
//! import and pass validation with the report entries SOURCE.txt asks for;
//! NEGATIVE trees fail with one error naming the file and line.

use std::path::{Path, PathBuf};

use hbd::import::{self, Options, Report, SimHost, hacf, haresources};

fn corpus() -> PathBuf {
    if let Some(p) = std::env::var_os("HBD_IMPORT_CORPUS") {
        return PathBuf::from(p);
    }
    let beside = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/import-corpus");
    if beside.is_dir() {
        return beside;
    }
    PathBuf::from("/work/shared/import-corpus")
}

enum Want {
    /// Imports; the report mentions every one of these.
    Ok(&'static [&'static str]),
    /// Fails; the error starts with the first string and contains the second.
    Err(&'static str, &'static str),
}

/// The node each tree is imported on (only matters for ucast), as SOURCE.txt implies.
fn host(tree: &str) -> SimHost {
    match tree {
        "auditt7708-pacemaker-resource" => SimHost::new("mts-dev-amqp-node-2")
            .with_addr("eth0", "10.10.0.2/24")
            .with_host("mts-dev-amqp-node-1.intervale.ru", "10.10.0.1"),
        "chenzhiwei-linux" => SimHost::new("host41").with_addr("eth1", "172.16.12.41/24"),
        "easytzb-ops-notes" => SimHost::new("Web_MySQL_M1").with_addr("em1", "117.79.238.49/27"),
        "gslin-coscup2015-mysql" => {
            SimHost::new("db-drbd-1").with_addr("eth1", "192.168.50.101/24")
        }
        "jmhodges-poolparty" => {
            SimHost::new("lb1.example.com").with_addr("eth0", "192.168.0.100/24")
        }
        "ljproyectoasir-lb04" => SimHost::new("alton").with_addr("eth0", "10.0.30.11/24"),
        "pulecp-vagrant-pacemaker" => SimHost::new("s1").with_addr("eth2", "192.168.9.121/24"),
        "raspberry1123-ha-setting" => {
            SimHost::new("hadoop-master0").with_addr("eth1", "172.16.1.18/24")
        }
        "shotai-consulexample" => SimHost::new("node1").with_addr("eth1", "192.168.88.128/24"),
        "slpcat-freebsd-config" => {
            SimHost::new("ha1.example.com").with_addr("bge0", "10.0.2.117/24")
        }
        _ => SimHost::new("workstation"),
    }
}

fn want(tree: &str) -> Want {
    use Want::*;
    match tree {
        "7layer-org" => Err("ha.cf:14: ", "no `node` lines"),
        "amara-k-administration-linux" => Err("haresources:1: ", "template placeholder"),
        "andrewbx-config" => Ok(&[
            "interface label eth0:1 dropped",
            "respawn cluster /usr/lib/heartbeat/ipfail → nothing to run",
            "ping 172.16.1.254 → [failover] ping",
            "deadping 60 → [failover] ping_dampen",
        ]),
        "auditt7708-pacemaker-resource" => Ok(&[
            "from /etc/hosts",
            "crm respawn",
            "autojoin any",
            "apiauth stonith-ng",
            "max_rexmit_delay",
            "hbgenmethod",
        ]),
        "bwahn-heartbeat-vagrant" => Err("haresources:1: ", "\"lisa\" is not declared"),
        "chenzhiwei-linux" => Ok(&[
            "ping_group group1 172.16.12.1 → [failover] ping",
            "counted one by one",
            "dopd",
            "sha1",
        ]),
        "chinatree-sources-install" => Ok(&[
            "node VM-X-93 is named vm-x-93",
            "watchdog",
            "hopfudge",
            "ipfail",
        ]),
        "drbd-guide-83-ha-cf" => Err("ha.cf:2: ", "multicast group is missing"),
        "easytzb-ops-notes" => Ok(&[
            "crc, which has no secret",
            "FRESH RANDOM KEY",
            "node Web_MySQL_M1 is named web_mysql_m1",
            "drbd_primary",
        ]),
        "epnmiguel-distribuidas" => Ok(&["default is legacy", "authkeys"]),
        "gslin-coscup2015-mysql" => Ok(&["MailTo", "drbddisk::r0"]),
        "hb-standby-manpage-alice-bob" => Err("ha.cf: ", "not found"),
        "ivpusic-server-configs" => Ok(&["udpport 696 comes after media", "only 7 characters"]),
        "jmhodges-poolparty" => Ok(&["pre-1.0 spelling of `bcast`", "repeats the broadcast link"]),
        "kchendil-vagrant-linux-ha" => Err("haresources:1: ", "\"lisa\" is not declared"),
        "kingkami-virtu-linux" => Err("haresources:2: ", "\"virtual_ip\""),
        "kolab-thesis-serial-mcast" => Err("haresources:5: ", "icarus.matrix.com"),
        "ljproyectoasir-lb04" => Err("haresources:1: ", "prefix after the address is empty"),
        "maxencecolmant-asterisk" => Err("ha.cf:9: ", "did you mean \"udpport\""),
        "pulecp-vagrant-pacemaker" => Ok(&[
            "resources live in the CIB",
            "this node's own address",
            "ifcheckd",
        ]),
        "raspberry1123-ha-setting" => Ok(&["resources live in the CIB"]),
        "resource-agents-documented-lines" => Err("ha.cf: ", "not found"),
        "ryanaudiencepi-heartbeat-template" => Ok(&["httpd"]),
        "seanhead-puppet-pacemaker" => Err("ha.cf:", "no `node` lines"),
        "shotai-consulexample" => Ok(&["netmask 255.255.255.0 written as prefix /24"]),
        "slpcat-freebsd-config" => Ok(&["crm off"]),
        "toreatessier-ansible-lb" => Ok(&["haproxy.service"]),
        "upstream-heartbeat-3.0.6-samples" => Err("ha.cf: ", "no `node` lines"),
        other => panic!("corpus tree {other} has no expectation in this test"),
    }
}

fn opts() -> Options {
    Options {
        node_dir: Some(PathBuf::from("/etc/ha.d")),
        ..Options::default()
    }
}

#[test]
fn every_corpus_tree_imports_or_fails_as_source_txt_says() {
    let root = corpus();
    let mut trees: Vec<String> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("import corpus {}: {e}", root.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    trees.sort();
    assert_eq!(trees.len(), 28, "{trees:?}");
    let (mut ok, mut failed) = (0, 0);
    for tree in &trees {
        let dir = root.join(tree);
        let result = import::import(&dir, &opts(), &host(tree));
        match (want(tree), result) {
            (Want::Ok(mentions), Ok(got)) => {
                ok += 1;
                hbd::config::parse_str(&got.toml, Path::new("cluster.toml"))
                    .unwrap_or_else(|e| panic!("{tree}: output does not validate: {e}"));
                let text = got.report.render();
                if std::env::var_os("HBD_SHOW").is_some() {
                    eprintln!("===== {tree}\n{}----- report\n{text}", got.toml);
                }
                for m in mentions {
                    assert!(text.contains(m), "{tree}: report lacks \"{m}\":\n{text}");
                }
            }
            (Want::Ok(_), Err(e)) => panic!("{tree}: should import, failed: {e}"),
            (Want::Err(start, contains), Err(e)) => {
                failed += 1;
                let s = e.to_string();
                assert!(
                    s.starts_with(start),
                    "{tree}: error should start {start:?}: {s}"
                );
                assert!(
                    s.contains(contains),
                    "{tree}: error should mention {contains:?}: {s}"
                );
                assert!(!s.contains('\n'), "{tree}: one line: {s}");
            }
            (Want::Err(..), Ok(got)) => panic!("{tree}: should fail, imported:\n{}", got.toml),
        }
    }
    assert_eq!((ok, failed), (15, 13));
}

#[test]
fn output_is_stable_across_runs() {
    // Same input, same bytes (no time stamps, no map-order effects).
    let dir = corpus().join("andrewbx-config");
    let a = import::import(&dir, &opts(), &host("andrewbx-config")).expect("import");
    let b = import::import(&dir, &opts(), &host("andrewbx-config")).expect("import");
    assert_eq!(a.toml, b.toml);
    assert_eq!(a.config.groups.len(), 2, "VIP group and storage group");
    assert_eq!(a.config.groups[1].resources.len(), 11);
}

#[test]
fn haresources_only_trees_parse_on_their_own() {
    // hb_standby's canonical active/active example: two groups, one per node.
    let text = std::fs::read(corpus().join("hb-standby-manpage-alice-bob/haresources"))
        .expect("haresources");
    let mut r = Report::default();
    let groups = haresources::parse(&text, "haresources", &mut r).expect("parse");
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].node, "alice");
    assert_eq!(groups[1].node, "bob");
    assert_eq!(groups[0].resources[2].name, "IPaddr");

    // resource-agents' documented lines: every line is fine alone, the file as a whole
    // repeats the first resource, which Heartbeat refuses.
    let text = std::fs::read(corpus().join("resource-agents-documented-lines/haresources"))
        .expect("haresources");
    let e = haresources::parse(&text, "haresources", &mut r).expect_err("duplicate key");
    assert!(e.to_string().contains("already starts the group"), "{e}");
    for line in String::from_utf8_lossy(&text).lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        haresources::parse(l.as_bytes(), "haresources", &mut r)
            .unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    let s = haresources::spec("Filesystem::server:/data1::/data1::nfs::ro");
    assert_eq!(s.args[0], "server:/data1");
    assert_eq!(
        haresources::spec("LinuxSCSI:0:0:11").name,
        "LinuxSCSI:0:0:11"
    );
}

#[test]
fn kolab_ha_cf_reads_three_link_kinds() {
    let text = std::fs::read(corpus().join("kolab-thesis-serial-mcast/ha.cf")).expect("ha.cf");
    let mut r = Report::default();
    let cf = hacf::parse(&text, "ha.cf", &mut r).expect("parse");
    let kinds: Vec<&str> = cf
        .media
        .iter()
        .map(|m| match m {
            hacf::Medium::Serial { .. } => "serial",
            hacf::Medium::Bcast { .. } => "bcast",
            hacf::Medium::Mcast { .. } => "mcast",
            hacf::Medium::Ucast { .. } => "ucast",
        })
        .collect();
    assert_eq!(kinds, ["serial", "bcast", "mcast"]);
    assert!(r.mentions("nice_failback"));
    assert!(r.mentions("mcast loop 1"));
}

#[test]
fn upstream_sample_authkeys_has_no_auth_line() {
    let text = std::fs::read(corpus().join("upstream-heartbeat-3.0.6-samples/authkeys"))
        .expect("authkeys");
    let mut r = Report::default();
    let e = import::authkeys::parse(&text, "authkeys", &mut r).expect_err("all comments");
    assert!(e.to_string().contains("no `auth N` line"), "{e}");
}

#[test]
fn parsers_never_panic_on_corpus_bytes_mangled() {
    // Truncate every corpus file at every 7th byte and flip bytes: errors, never panics.
    let root = corpus();
    for entry in std::fs::read_dir(&root)
        .expect("corpus")
        .filter_map(|e| e.ok())
    {
        for name in ["ha.cf", "haresources", "authkeys"] {
            let Ok(bytes) = std::fs::read(entry.path().join(name)) else {
                continue;
            };
            for cut in (0..bytes.len()).step_by(7) {
                let mut b = bytes[..cut].to_vec();
                if let Some(x) = b.last_mut() {
                    *x ^= 0x80;
                }
                let mut r = Report::default();
                let _ = hacf::parse(&b, "ha.cf", &mut r);
                let _ = haresources::parse(&b, "haresources", &mut r);
                let _ = import::authkeys::parse(&b, "authkeys", &mut r);
            }
        }
    }
}

/// How each ucast tree is converted off its node: `--node` and `--address` for this
/// node's address on each ucast link (the same facts [`host`] simulates on the node).
fn off_node_args(tree: &str) -> &'static [&'static str] {
    match tree {
        "auditt7708-pacemaker-resource" => &[
            "--node",
            "mts-dev-amqp-node-2.intervale.ru",
            "--address",
            "eth0=10.10.0.2",
        ],
        "chenzhiwei-linux" => &["--node", "host41", "--address", "eth1=172.16.12.41"],
        "easytzb-ops-notes" => &[
            "--node",
            "web_mysql_m1",
            "--address",
            "ucast-em1=117.79.238.49",
        ],
        "gslin-coscup2015-mysql" => &["--node", "db-drbd-1", "--address", "eth1=192.168.50.101"],
        "jmhodges-poolparty" => &[
            "--node",
            "lb1.example.com",
            "--address",
            "eth0=192.168.0.100",
        ],
        "ljproyectoasir-lb04" => &["--node", "alton", "--address", "eth0=10.0.30.11"],
        "pulecp-vagrant-pacemaker" => &["--node", "s1", "--address", "eth2=192.168.9.121"],
        "raspberry1123-ha-setting" => {
            &["--node", "hadoop-master0", "--address", "eth1=172.16.1.18"]
        }
        "shotai-consulexample" => &["--node", "node1", "--address", "eth1=192.168.88.128"],
        "slpcat-freebsd-config" => &["--node", "ha1.example.com", "--address", "bge0=10.0.2.117"],
        _ => &[],
    }
}

/// Off the node, only /etc/hosts is missing: a peer named by host name cannot be
/// resolved, which is one clear error naming the line.
fn off_node_want(tree: &str) -> Want {
    match tree {
        "auditt7708-pacemaker-resource" => Want::Err("ha.cf:20: ", "/etc/hosts does not list it"),
        other => want(other),
    }
}

/// Every corpus tree through the command line, on whatever machine runs the test (no
/// interface of it is consulted: --address gives each ucast link's local address):
/// it imports, writes cluster.toml and the key, and `hbd check` accepts both; or it
/// fails with exit 1 and one line naming the Heartbeat file and line.
#[test]
fn every_corpus_tree_converts_off_node_and_passes_hbd_check() {
    let root = corpus();
    let bin = env!("CARGO_BIN_EXE_hbd");
    let mut trees: Vec<String> = std::fs::read_dir(&root)
        .expect("corpus")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    trees.sort();
    let (mut ok, mut failed) = (0, 0);
    for tree in &trees {
        let tmp = tempfile::tempdir().expect("tempdir");
        let out = tmp.path().join("cluster.toml");
        let key = tmp.path().join("authkey");
        let run = std::process::Command::new(bin)
            .arg("import")
            .arg(root.join(tree))
            .arg("--output")
            .arg(&out)
            .arg("--key-output")
            .arg(&key)
            .args(off_node_args(tree))
            .env_remove("HBD_CONFIG")
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .expect("run hbd import");
        let stderr = String::from_utf8_lossy(&run.stderr);
        match off_node_want(tree) {
            Want::Ok(mentions) => {
                assert!(run.status.success(), "{tree}: import failed:\n{stderr}");
                for m in mentions {
                    assert!(
                        stderr.contains(m),
                        "{tree}: report lacks \"{m}\":\n{stderr}"
                    );
                }
                let hint = format!("check it with `hbd check -c {}`", out.display());
                assert!(stderr.contains(&hint), "{tree}: {stderr}");
                let check = std::process::Command::new(bin)
                    .arg("check")
                    .arg("-c")
                    .arg(&out)
                    .env_remove("HBD_CONFIG")
                    .env_remove("CREDENTIALS_DIRECTORY")
                    .output()
                    .expect("run hbd check");
                let text = String::from_utf8_lossy(&check.stdout);
                assert!(
                    check.status.success(),
                    "{tree}: hbd check refused the import:\n{}{text}",
                    String::from_utf8_lossy(&check.stderr)
                );
                // The key it checked is the one the import wrote.
                assert!(
                    text.contains(&format!("key: {}", key.display())),
                    "{tree}: {text}"
                );
                ok += 1;
            }
            Want::Err(start, contains) => {
                assert_eq!(run.status.code(), Some(1), "{tree}: {stderr}");
                let line = stderr.trim_end();
                assert!(!line.contains('\n'), "{tree}: one line: {stderr}");
                let want = format!("hbd: error: {start}");
                assert!(
                    line.starts_with(&want),
                    "{tree}: should start {want:?}: {line}"
                );
                assert!(
                    line.contains(contains),
                    "{tree}: should mention {contains:?}: {line}"
                );
                assert!(
                    !out.exists() && !key.exists(),
                    "{tree}: wrote files on failure"
                );
                failed += 1;
            }
        }
    }
    assert_eq!((ok, failed), (14, 14));
}

/// Every ha.cf directive of every tree that imports has an answer in the report:
/// mapped, changed, or dropped with its reason.
#[test]
fn every_ha_cf_directive_has_an_answer_in_the_report() {
    let root = corpus();
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/legacy-import");
    let mut dirs: Vec<(PathBuf, SimHost)> = Vec::new();
    for e in std::fs::read_dir(&root)
        .expect("corpus")
        .filter_map(|e| e.ok())
    {
        let name = e.file_name().to_string_lossy().to_string();
        dirs.push((e.path(), host(&name)));
    }
    for e in std::fs::read_dir(&contrib)
        .expect("contrib")
        .filter_map(|e| e.ok())
    {
        let name = e.file_name().to_string_lossy().to_string();
        let h = match name.as_str() {
            "ucast-pair-alpha" => SimHost::new("alpha").with_addr("eth1", "10.0.0.1/24"),
            "ucast-pair-beta" => SimHost::new("beta").with_addr("eth1", "10.0.0.2/24"),
            _ => SimHost::new("workstation"),
        };
        dirs.push((e.path(), h));
    }
    let mut checked = 0;
    for (dir, h) in dirs {
        let Ok(got) = import::import(&dir, &opts(), &h) else {
            continue;
        };
        let text = std::fs::read(dir.join("ha.cf")).expect("ha.cf");
        for (i, raw) in text.split(|&b| b == b'\n').enumerate() {
            let body = raw.split(|&b| b == b'#').next().unwrap_or_default();
            if body.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let n = i + 1;
            assert!(
                got.report
                    .entries
                    .iter()
                    .any(|e| e.file == "ha.cf" && e.line == n),
                "{}: ha.cf:{n} ({}) has no answer in the report:\n{}",
                dir.display(),
                String::from_utf8_lossy(raw),
                got.report.render()
            );
            checked += 1;
        }
    }
    assert!(checked > 200, "only {checked} directives checked");
}
