//! Fails early, with one message that says what to install, when OpenBLAS is missing.
//! (Without this the build gets as far as the linker and dies with `cannot find -lopenblas`.)

use std::path::Path;

const LIBRARY_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/lib",
    "/opt/homebrew/opt/openblas/lib",
    "/usr/local/opt/openblas/lib",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    if std::env::var_os("DOCS_RS").is_some() {
        return;
    }
    let found_by_pkg_config = pkg_config::Config::new()
        .cargo_metadata(false)
        .probe("openblas")
        .is_ok();
    if found_by_pkg_config || library_file_present() {
        return;
    }
    panic!(
        "\n\nbackprop needs the OpenBLAS library (with CBLAS) and pkg-config, and neither pkg-config \
         nor the usual library folders know of it. Install it, then build again:\n\
         \n  Debian/Ubuntu: sudo apt-get install -y libopenblas-dev pkg-config\
         \n  Fedora/RHEL:   sudo dnf install -y openblas-devel pkgconf-pkg-config\
         \n  Arch:          sudo pacman -S openblas pkgconf\
         \n  macOS:         brew install openblas pkg-config && \
         export PKG_CONFIG_PATH=\"$(brew --prefix openblas)/lib/pkgconfig\"\n\n"
    );
}

fn library_file_present() -> bool {
    LIBRARY_DIRS.iter().any(|dir| {
        ["libopenblas.so", "libopenblas.dylib", "libopenblas.a"]
            .iter()
            .any(|name| Path::new(dir).join(name).exists())
    })
}
