//! The `regdns` binary: a tiny frontend over [`regdns::cli`].

fn main() -> std::process::ExitCode {
    regdns::cli::main()
}
