//! The `khorus-router` binary: its command line is [`khorus_router::cli`] (control runs the same
//! command line from its own binary, so the stages it starts share their code pages).

fn main() -> std::process::ExitCode {
    khorus_router::cli::main()
}
