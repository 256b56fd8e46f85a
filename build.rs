//! Lab tests boot systemd in network namespaces and need root. Built as root, or in
//! CI (where they must run, and fail loudly when they cannot), they are compiled as
//! ordinary tests; built otherwise, as ignored tests, so `cargo test` reports them
//! as ignored rather than passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(hbd_lab)");
    println!("cargo::rerun-if-env-changed=CI");
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root || std::env::var_os("CI").is_some() {
        println!("cargo::rustc-cfg=hbd_lab");
    }
}
