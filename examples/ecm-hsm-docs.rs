//! Writes the admin tool's man pages and shell completions from its clap definitions, so they
//! can never drift from `ecm-hsm --help`. Run at package build (`debian/rules`):
//!
//! ```sh
//! cargo run --release --example ecm-hsm-docs -- OUT_DIR
//! ```
//!
//! writes `OUT_DIR/man/ecm-hsm.1` and one page per subcommand (`ecm-hsm-hierarchy-init.1`, …),
//! and `OUT_DIR/completions/{ecm-hsm.bash,_ecm-hsm,ecm-hsm.fish}`.

// The admin tool's command line, compiled here only for its definitions: its commands are
// never run, so their code is dead in this program.
#[allow(dead_code)]
#[path = "../src/cli/mod.rs"]
mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: ecm-hsm-docs OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(&out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ecm-hsm-docs: {}: {error}", out.display());
            ExitCode::FAILURE
        }
    }
}

fn write_all(out: &std::path::Path) -> std::io::Result<()> {
    let man = out.join("man");
    let completions = out.join("completions");
    std::fs::create_dir_all(&man)?;
    std::fs::create_dir_all(&completions)?;
    // One page per command and subcommand; `generate_to` leaves out hidden ones.
    clap_mangen::generate_to(cli::Cli::command(), &man)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        clap_complete::generate_to(shell, &mut cli::Cli::command(), "ecm-hsm", &completions)?;
    }
    Ok(())
}
