use std::process::ExitCode;

fn main() -> ExitCode {
    rounds::cli::main()
}
