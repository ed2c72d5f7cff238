//! The `khorus-synth` binary: its command line is [`khorus_synth::cli`] (control runs the same
//! command line from its own binary, so the stages it starts share their code pages).

fn main() -> std::process::ExitCode {
    khorus_synth::cli::main()
}
