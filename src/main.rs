fn main() -> std::process::ExitCode {
    // Before any product: may re-execute the program once with faster OpenBLAS kernels.
    backprop::compute::coretype::ensure_fast_blas_core();
    backprop::compute::blas::end_openblas_pool();
    let status = backprop::commands::main();
    std::process::ExitCode::from(u8::try_from(status).unwrap_or(1))
}
