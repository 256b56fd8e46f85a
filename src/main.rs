//! The `hbd` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    hbd::cli::main()
}
