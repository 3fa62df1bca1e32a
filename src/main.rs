fn main() {
    std::process::exit(backprop::cli::main());
}
