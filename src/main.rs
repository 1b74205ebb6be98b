//! The `splitgate` command: everything is in `cli` (the command line) and the library
//! (`splitgate::app` composes a running proxy).
#![forbid(unsafe_code)]

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
