//! Writes `target/<profile>/pkgconfig/oai.pc`, so that
//! `PKG_CONFIG_PATH=target/debug/pkgconfig cc app.c $(pkg-config --cflags --libs oai)` links
//! the shared library from the build output. Its libdir is `target/<profile>/deps`, where
//! cargo writes liboai.so and liboai.a both for `cargo build` (which also copies them up a
//! level) and for `cargo test`.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    // OUT_DIR is target/<profile>/build/oai-c-<hash>/out: the libraries land three levels up.
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let Some(profile_dir) = out.ancestors().nth(3) else {
        return;
    };
    let libdir = profile_dir.join("deps");
    let version = std::env::var("CARGO_PKG_VERSION").expect("set by cargo");
    let pc = format!(
        "includedir={include}\nlibdir={lib}\n\nName: oai\nDescription: C API of the oai SDK \
         (datasets, verifiable training, verification, retrieval)\nVersion: {version}\n\
         Cflags: -I${{includedir}}\nLibs: -L${{libdir}} -Wl,-rpath,${{libdir}} -loai\n\
         Libs.private: -lpthread -ldl -lm -lrt -lutil -lgcc_s\n",
        include = manifest.join("include").display(),
        lib = libdir.display(),
    );
    let dir = profile_dir.join("pkgconfig");
    if std::fs::create_dir_all(&dir).is_ok() {
        let path = dir.join("oai.pc");
        if std::fs::read_to_string(&path).ok().as_deref() != Some(pc.as_str()) {
            let _ = std::fs::write(&path, pc);
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
