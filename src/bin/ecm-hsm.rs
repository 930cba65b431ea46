//! `ecm-hsm`, the admin tool of the ecm-hsm software HSM: tokens, the master key / KEK / DEK
//! hierarchy, rotation, retirement, status and envelopes. The commands live in `src/cli/`;
//! run `ecm-hsm --help` for them.

#[path = "../cli/mod.rs"]
mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
