fn main() -> std::process::ExitCode {
    let status = backprop::commands::main();
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
