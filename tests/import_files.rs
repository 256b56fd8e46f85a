//! `hbd import` as an attacker or a careless admin would use it: planted symlinks
//! beside the output, huge or endless inputs, FIFOs where a file is expected.
//! (Issue 15, holes 7 and 8.)

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use hbd::import::{self, Options, SimHost};

const HACF: &str = "keepalive 1\ndeadtime 10\nbcast eth0\nbcast eth1\nnode a b\n";

fn tree(dir: &Path, hacf: &str) {
    fs::create_dir_all(dir).expect("mkdir");
    fs::write(dir.join("ha.cf"), hacf).expect("ha.cf");
    fs::write(dir.join("haresources"), "a 10.0.0.5 nginx\n").expect("haresources");
    fs::write(
        dir.join("authkeys"),
        "auth 1\n1 sha1 a-long-enough-secret\n",
    )
    .expect("authkeys");
}

#[test]
fn a_symlink_planted_at_the_temporary_name_is_never_followed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let victim = tmp.path().join("victim");
    fs::write(&victim, "precious\n").expect("victim");
    let out = tmp.path().join("cluster.toml");
    // The name hbd used to write through (".NAME.tmpPID", PID of the writer: here this
    // process, since write_atomic runs in it), and a few other guesses.
    for name in [
        format!(".cluster.toml.tmp{}", std::process::id()),
        ".cluster.toml.tmp".to_string(),
        "cluster.toml.tmp".to_string(),
    ] {
        symlink(&victim, tmp.path().join(name)).expect("plant symlink");
    }
    import::write_atomic(&out, "[cluster]\nname = \"x\"\n").expect("write");
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    assert_eq!(
        fs::read_to_string(&out).expect("output"),
        "[cluster]\nname = \"x\"\n"
    );
    assert!(
        !fs::symlink_metadata(&out)
            .expect("output")
            .file_type()
            .is_symlink()
    );
    // No temporary file is left behind.
    let left: Vec<String> = fs::read_dir(tmp.path())
        .expect("list")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".tmp") && n.starts_with(".cluster.toml.") && n.len() > 18)
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Through the command line too: a symlink where the output goes is replaced by
    // the file (with --force), the file it pointed to is left alone.
    let d = tmp.path().join("ha.d");
    tree(&d, HACF);
    let link_out = tmp.path().join("linked.toml");
    symlink(&victim, &link_out).expect("symlink output");
    let st = Command::new(env!("CARGO_BIN_EXE_hbd"))
        .arg("import")
        .arg(&d)
        .arg("--output")
        .arg(&link_out)
        .arg("--key-output")
        .arg(tmp.path().join("authkey"))
        .arg("--force")
        .output()
        .expect("run hbd");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert_eq!(fs::read_to_string(&victim).expect("victim"), "precious\n");
    assert!(
        fs::read_to_string(&link_out)
            .expect("out")
            .contains("[cluster]")
    );
}

fn import_err(d: &Path) -> String {
    let host = SimHost::new("a").with_mode(0o600);
    match import::import(d, &Options::default(), &host) {
        Ok(i) => panic!("imported:\n{}", i.toml),
        Err(e) => e.to_string(),
    }
}

#[test]
fn ten_thousand_media_lines_are_refused_at_the_line_that_goes_over() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut cf = String::from("node a b\n");
    for _ in 0..10_000 {
        cf.push_str("mcast eth0 239.0.0.1 694 1 0\n");
    }
    tree(tmp.path(), &cf);
    let e = import_err(tmp.path());
    assert!(
        e.starts_with("ha.cf:66: more than 64 heartbeat media"),
        "{e}"
    );

    // 16 000 nodes on one line, then on one line each.
    let names: Vec<String> = (0..16_000).map(|i| format!("n{i}")).collect();
    tree(
        tmp.path(),
        &format!("bcast eth0\nnode {}\n", names.join(" ")),
    );
    let e = import_err(tmp.path());
    assert!(
        e.starts_with("ha.cf:2: more than 32 nodes: hbd supports at most 32"),
        "{e}"
    );
    let per_line: String = names.iter().map(|n| format!("node {n}\n")).collect();
    tree(tmp.path(), &format!("bcast eth0\n{per_line}"));
    let e = import_err(tmp.path());
    assert!(e.starts_with("ha.cf:34: more than 32 nodes"), "{e}");

    // 10 000 groups.
    tree(tmp.path(), HACF);
    let groups: String = (0..10_000)
        .map(|i| format!("a 10.{}.{}.1 svc{i}\n", i / 256, i % 256))
        .collect();
    fs::write(tmp.path().join("haresources"), groups).expect("haresources");
    let e = import_err(tmp.path());
    assert!(
        e.starts_with("haresources:65: more than 64 resource groups"),
        "{e}"
    );
    // 100 000 resources on one line.
    let line: Vec<String> = (0..100_000).map(|i| format!("svc{i}")).collect();
    fs::write(
        tmp.path().join("haresources"),
        format!("a {}\n", line.join(" ")),
    )
    .expect("haresources");
    let e = import_err(tmp.path());
    assert!(
        e.starts_with(
            "haresources:1: 100000 resources in one group: the importer takes at most 128"
        ),
        "{e}"
    );
}

#[test]
fn huge_files_fifos_and_directories_are_refused_before_reading() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    tree(d, HACF);
    // 2 MiB of comments: refused by size, with a sentence.
    let big = format!("{HACF}{}", "# padding padding padding\n".repeat(80_000));
    fs::write(d.join("ha.cf"), big).expect("big");
    let e = import_err(d);
    assert!(e.contains("more than the 1048576 bytes (1 MiB)"), "{e}");
    assert!(e.contains("ha.cf"), "{e}");
    // A FIFO: refused at once (opening it must not wait for a writer).
    fs::remove_file(d.join("ha.cf")).expect("rm");
    nix::unistd::mkfifo(
        &d.join("ha.cf"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let e = import_err(d);
    assert!(e.contains("not a regular file"), "{e}");
    // A directory.
    fs::remove_file(d.join("ha.cf")).expect("rm");
    fs::create_dir(d.join("ha.cf")).expect("mkdir");
    let e = import_err(d);
    assert!(e.contains("is a directory"), "{e}");
}
