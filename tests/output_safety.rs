//! Nothing the user has is lost: every output is resolved and checked before training (not
//! an input, not another output, not a folder, writable, a known plot format); a resumed
//! run writes only where its command line says; a save that fails late still lands
//! somewhere, and the message says where.

mod common;

use std::path::{Path, PathBuf};

const TINY: &str = "seed = 1\n[data]\ndir = \"data\"\n[model]\nhidden = [8]\n\
                    [train]\nepochs = 1\nbatch_size = 8\n";

/// A folder with a 4x4 two-class dataset in `data/` and the config `run.toml`.
fn workspace(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    common::write_band_dataset(&dir.path().join("data"), 4, 2, 40, 10);
    let cfg = common::write_config(dir.path(), "run.toml", config);
    (dir, cfg)
}

fn train_in(dir: &Path, args: &[&str]) -> std::process::Output {
    common::backprop()
        .args(args)
        .arg("--quiet")
        .current_dir(dir)
        .output()
        .unwrap()
}

fn refused(out: &std::process::Output, needles: &[&str]) {
    let err = common::stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "expected `{n}` in: {err}");
    }
}

#[test]
fn resuming_a_copy_never_writes_to_the_original_save_path() {
    let (dir, _) = workspace(TINY);
    let d = dir.path();
    let out = train_in(d, &["--config", "run.toml", "--save", "orig.safetensors"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    std::fs::copy(d.join("orig.safetensors"), d.join("copy.safetensors")).unwrap();
    let before = std::fs::read(d.join("orig.safetensors")).unwrap();
    let out = train_in(d, &["--resume", "copy.safetensors", "--epochs", "2"]);
    let err = common::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(std::fs::read(d.join("orig.safetensors")).unwrap(), before);
    assert!(
        err.contains("a resumed run writes only to the files this"),
        "{err}"
    );
    assert!(err.contains("no --save"), "{err}");
}

#[test]
fn resuming_never_replaces_its_source_unless_save_names_it() {
    let (dir, _) = workspace(&format!("{TINY}[output]\nsave = \"ck.safetensors\"\n"));
    let d = dir.path();
    assert!(train_in(d, &["--config", "run.toml"]).status.success());
    let before = std::fs::read(d.join("ck.safetensors")).unwrap();
    let out = train_in(
        d,
        &[
            "--config",
            "run.toml",
            "--resume",
            "ck.safetensors",
            "--epochs",
            "2",
        ],
    );
    refused(&out, &["is the checkpoint being resumed", "ck.safetensors"]);
    assert_eq!(std::fs::read(d.join("ck.safetensors")).unwrap(), before);
    // Named explicitly, it is what the user asked for.
    let out = train_in(
        d,
        &[
            "--config",
            "run.toml",
            "--resume",
            "ck.safetensors",
            "--epochs",
            "2",
            "--save",
            "ck.safetensors",
        ],
    );
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert_ne!(std::fs::read(d.join("ck.safetensors")).unwrap(), before);
}

#[test]
fn outputs_onto_inputs_each_other_or_folders_are_refused_before_training() {
    let (dir, _) = workspace(TINY);
    let d = dir.path();
    let config_before = std::fs::read(d.join("run.toml")).unwrap();
    let data = d.join("data/t10k-labels-idx1-ubyte");
    let data_before = std::fs::read(&data).unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--save", "run.toml"], "is the config file"),
        (
            &["--metrics-out", "data/t10k-labels-idx1-ubyte"],
            "is a data file",
        ),
        (
            &["--metrics-out", "same.out", "--save", "same.out"],
            "--metrics-out and --save both name",
        ),
        (&["--save", "data"], "is a directory"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["--config", "run.toml"];
        args.extend_from_slice(extra);
        let out = train_in(d, &args);
        refused(&out, &[needle]);
        assert!(!common::stdout(&out).contains("result:"), "trained anyway");
    }
    assert_eq!(std::fs::read(d.join("run.toml")).unwrap(), config_before);
    assert_eq!(std::fs::read(&data).unwrap(), data_before);
    assert!(!d.join("same.out").exists());
}

#[test]
fn csv_out_onto_the_training_csv_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rows: String = (0..40).map(|i| format!("{i},{}\n", i % 2)).collect();
    std::fs::write(d.join("t.csv"), format!("x,y\n{rows}")).unwrap();
    let before = std::fs::read(d.join("t.csv")).unwrap();
    common::write_config(
        d,
        "run.toml",
        "[data.csv]\ntrain = \"t.csv\"\ntarget = [\"y\"]\nclassification = true\n\
         [train]\nepochs = 1\n",
    );
    let out = train_in(d, &["--config", "run.toml", "--csv-out", "t.csv"]);
    refused(&out, &["--csv-out", "is the training data"]);
    assert_eq!(std::fs::read(d.join("t.csv")).unwrap(), before);
}

#[test]
fn a_bad_plot_extension_or_an_unwritable_folder_fails_before_training() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, _) = workspace(TINY);
    let d = dir.path();
    let out = train_in(d, &["--config", "run.toml", "--plot", "curves.jpg"]);
    refused(&out, &["--plot", "must end in .png or .svg"]);
    // A read-only folder, as a user the mode bits apply to (root writes anywhere).
    let locked = d.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    use std::os::unix::process::CommandExt;
    let out = common::backprop()
        .args([
            "--config",
            "run.toml",
            "--save",
            "locked/m.safetensors",
            "--quiet",
        ])
        .current_dir(d)
        .uid(65534)
        .gid(65534)
        .env("HOME", "/nonexistent")
        .env("XDG_CACHE_HOME", "/tmp")
        .output()
        .unwrap();
    refused(&out, &["--save", "cannot be written", "before training"]);
}

#[test]
fn a_folder_made_read_only_mid_run_still_saves_the_model_and_says_where() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let (dir, _) = workspace(&format!(
        "{}[output]\ncheckpoint_every = 1\n",
        TINY.replace("epochs = 1", "epochs = 100000000")
    ));
    let d = dir.path();
    let out_dir = d.join("out");
    let spare = d.join("spare");
    for p in [&out_dir, &spare] {
        std::fs::create_dir(p).unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    for p in [d.to_path_buf(), d.join("data")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    // As `nobody`, for whom the mode bits apply; caches and the rescue go to `spare`.
    let child = common::backprop()
        .args([
            "--config",
            "run.toml",
            "--save",
            "out/m.safetensors",
            "--quiet",
        ])
        .current_dir(d)
        .uid(65534)
        .gid(65534)
        .env("HOME", "/nonexistent")
        .env("XDG_CACHE_HOME", &spare)
        .env("TMPDIR", &spare)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !out_dir.join("m.safetensors").exists() {
        assert!(start.elapsed().as_secs() < 60, "no checkpoint written");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let out = child.wait_with_output().unwrap();
    refused(&out, &["cannot write checkpoint", "the model is saved in"]);
    let err = common::stderr(&out);
    let rescued: Vec<_> = std::fs::read_dir(&spare)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("m.safetensors.rescued-"))
        .collect();
    assert_eq!(rescued.len(), 1, "{err}");
    assert!(err.contains(&rescued[0].display().to_string()), "{err}");
    let eval = common::run(&["eval", "--model", rescued[0].to_str().unwrap()]);
    assert!(eval.status.success(), "{}", common::stderr(&eval));
}
