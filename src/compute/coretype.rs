//! Makes a DYNAMIC_ARCH OpenBLAS that does not know the CPU use fast kernels anyway.
//!
//! OpenBLAS picks its kernels once, in a constructor that runs when the library is loaded,
//! before `main`; the only lever is the `OPENBLAS_CORETYPE` environment variable, read by that
//! constructor. An OpenBLAS older than the CPU (Debian 12 ships 0.3.21) may fall back to
//! generic SSE kernels (`Prescott`), several times slower than its AVX2 (`Haswell`) or AVX-512
//! (`SkylakeX`) kernels. [`ensure_fast_blas_core`] detects that and re-executes the program
//! once, unchanged but for `OPENBLAS_CORETYPE`, so the new process image loads OpenBLAS with
//! the right kernels.
//!
//! Call it first thing in the binary's `main` (never from library code, tests or benches: it
//! replaces the running program). It does nothing when:
//! - the user set `OPENBLAS_CORETYPE` (a non-empty value is respected, only checked for a
//!   value that would crash: AVX-512 kernels on a CPU without AVX-512 die with SIGILL);
//! - `BACKPROP_KEEP_BLAS_CORE` is set (opt-out);
//! - this process is already the corrected one (`BACKPROP_BLAS_CORE_CORRECTED`, the loop
//!   guard: at most one re-exec, even if OpenBLAS ignores the request);
//! - OpenBLAS is not a DYNAMIC_ARCH build (then the variable has no effect);
//! - the chosen core already uses AVX2 or better, or is a name this code does not know (a newer
//!   OpenBLAS), or the CPU has no AVX2+FMA;
//! - the executable is run through the dynamic loader (`ld.so ./backprop`) or valgrind, where
//!   `/proc/self/exe` is not the program;
//! - not Linux on x86_64.
//!
//! If `exec` fails, the run continues on the kernels OpenBLAS chose (the header says which).
//!
//! `src/main.rs` calls it; [`describe`] names the correction in the run header.

use std::ffi::OsStr;

/// Read by OpenBLAS' constructor.
pub const CORETYPE_VAR: &str = "OPENBLAS_CORETYPE";
/// Set in the re-executed process to `<chosen>:<forced>` (e.g. `Prescott:Haswell`); also the
/// loop guard.
pub const GUARD_VAR: &str = "BACKPROP_BLAS_CORE_CORRECTED";
/// Any value: keep whatever OpenBLAS chose.
pub const OPT_OUT_VAR: &str = "BACKPROP_KEEP_BLAS_CORE";

fn chosen_core() -> String {
    super::blas::core_name()
}

fn openblas_config() -> String {
    super::blas::config()
}

/// The widest vector ISA a kernel family of OpenBLAS' x86_64 DYNAMIC_ARCH builds uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tier {
    /// SSE2/SSE3 era kernels: Prescott, Core2, Penryn, Dunnington, Nehalem, Atom, Barcelona, ...
    Sse,
    /// AVX (no FMA3/AVX2 GEMM kernels): Sandybridge and the Bulldozer family.
    Avx,
    /// AVX2 + FMA: Haswell, Zen.
    Avx2,
    /// AVX-512: SkylakeX, Cooperlake, SapphireRapids.
    Avx512,
}

/// The tier of an OpenBLAS core name (as `openblas_get_corename` spells it, any case), or
/// `None` for a name this code does not know (a newer OpenBLAS: leave it alone).
pub fn core_tier(name: &str) -> Option<Tier> {
    let n = name.to_ascii_lowercase();
    Some(match n.as_str() {
        "skylakex" | "cooperlake" | "sapphirerapids" => Tier::Avx512,
        "haswell" | "zen" => Tier::Avx2,
        "sandybridge" | "bulldozer" | "piledriver" | "steamroller" | "excavator" => Tier::Avx,
        "unknown" | "katmai" | "coppermine" | "northwood" | "prescott" | "banias" | "atom"
        | "core2" | "penryn" | "dunnington" | "nehalem" | "athlon" | "opteron" | "opteron_sse3"
        | "barcelona" | "nano" | "bobcat" => Tier::Sse,
        _ => return None,
    })
}

/// What this CPU (and its OS, which must save the wider registers) can run.
#[cfg(target_arch = "x86_64")]
pub fn cpu_tier() -> Tier {
    use std::arch::is_x86_feature_detected as has;
    // OpenBLAS' SkylakeX kernels use F, BW, VL, DQ and CD (Xeon Phi has F without BW/VL).
    if has!("avx512f")
        && has!("avx512bw")
        && has!("avx512vl")
        && has!("avx512dq")
        && has!("avx512cd")
    {
        Tier::Avx512
    } else if has!("avx2") && has!("fma") {
        Tier::Avx2
    } else if has!("avx") {
        Tier::Avx
    } else {
        Tier::Sse
    }
}

#[cfg(not(target_arch = "x86_64"))]
pub fn cpu_tier() -> Tier {
    Tier::Sse
}

/// The core to ask for on a CPU of `tier` (None: nothing better than generic to ask for).
/// Haswell rather than Zen for AVX2: it is what OpenBLAS itself falls back to for AVX2 CPUs it
/// does not know, and measured the same speed as Zen on a Zen 3 (EPYC, family 25).
pub fn target_core(tier: Tier) -> Option<&'static str> {
    match tier {
        Tier::Avx512 => Some("SkylakeX"),
        Tier::Avx2 => Some("Haswell"),
        Tier::Avx | Tier::Sse => None,
    }
}

/// Everything the decision reads, so that it can be tested without a process.
#[derive(Clone, Debug, Default)]
pub struct Situation<'a> {
    pub chosen: &'a str,
    pub openblas_config: &'a str,
    pub user_coretype: Option<&'a OsStr>,
    pub guard_set: bool,
    pub opted_out: bool,
    pub cpu: Option<Tier>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Leave the process as it is.
    Keep,
    /// Keep, but the user's `OPENBLAS_CORETYPE` will crash: say so.
    WarnUserValue(String),
    /// Re-execute with `OPENBLAS_CORETYPE` = this core.
    Reexec(&'static str),
}

pub fn decide(s: &Situation) -> Decision {
    let cpu = match s.cpu {
        Some(t) => t,
        None => return Decision::Keep,
    };
    if let Some(value) = s.user_coretype.filter(|v| !v.is_empty()) {
        let value = value.to_string_lossy();
        if core_tier(&value) == Some(Tier::Avx512) && cpu < Tier::Avx512 {
            return Decision::WarnUserValue(format!(
                "{CORETYPE_VAR}={value} selects AVX-512 kernels, but this CPU has no AVX-512: \
                 OpenBLAS will stop the program with an illegal instruction at the first \
                 product; use {CORETYPE_VAR}={}",
                target_core(cpu).unwrap_or("Prescott")
            ));
        }
        return Decision::Keep;
    }
    if s.guard_set || s.opted_out || !s.openblas_config.contains("DYNAMIC_ARCH") {
        return Decision::Keep;
    }
    match (core_tier(s.chosen), target_core(cpu)) {
        // Below AVX2 on a CPU that has AVX2: the generic fallback. (An AVX2 core on an
        // AVX-512 CPU is left alone: OpenBLAS may have chosen it on purpose.)
        (Some(t), Some(target)) if t < Tier::Avx2 => Decision::Reexec(target),
        _ => Decision::Keep,
    }
}

/// Whether `/proc/self/exe` is this program (not the dynamic loader or valgrind running it).
#[cfg(target_os = "linux")]
fn self_exe_is_the_program() -> bool {
    let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
        return false;
    };
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let loader =
        name.starts_with("ld-linux") || name.starts_with("ld.so") || name.starts_with("ld64.so");
    let valgrind =
        std::env::var_os("LD_PRELOAD").is_some_and(|p| p.to_string_lossy().contains("vgpreload"));
    !loader && !valgrind
}

/// Call first thing in `main`. Returns only if no re-exec happened (nothing to correct, or
/// `exec` failed); see the module documentation.
pub fn ensure_fast_blas_core() {
    #[cfg(all(target_os = "linux", target_arch = "x86_64"))]
    correct(&chosen_core());
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
pub(crate) fn correct(chosen: &str) {
    use std::os::unix::process::CommandExt;
    let user = std::env::var_os(CORETYPE_VAR);
    let config = openblas_config();
    let situation = Situation {
        chosen,
        openblas_config: &config,
        user_coretype: user.as_deref(),
        guard_set: std::env::var_os(GUARD_VAR).is_some(),
        opted_out: std::env::var_os(OPT_OUT_VAR).is_some(),
        cpu: Some(cpu_tier()),
    };
    match decide(&situation) {
        Decision::Keep => {}
        Decision::WarnUserValue(message) => eprintln!("warning: {message}"),
        Decision::Reexec(target) => {
            if !self_exe_is_the_program() {
                return;
            }
            let mut args = std::env::args_os();
            let arg0 = args.next().unwrap_or_else(|| "backprop".into());
            // /proc/self/exe rather than argv[0] or current_exe(): it is the running file
            // even if it was found through PATH, renamed or rebuilt since it started.
            let error = std::process::Command::new("/proc/self/exe")
                .arg0(arg0)
                .args(args)
                .env(CORETYPE_VAR, target)
                .env(GUARD_VAR, format!("{chosen}:{target}"))
                .exec();
            // exec returns only on failure: carry on with the kernels we have.
            eprintln!(
                "warning: OpenBLAS chose its {chosen} kernels; re-running with \
                 {CORETYPE_VAR}={target} failed ({error}); set it in the environment for \
                 several times faster products"
            );
        }
    }
}

/// In the corrected process: `(chosen, forced)` as the first process saw them.
pub fn correction() -> Option<(String, String)> {
    let v = std::env::var(GUARD_VAR).ok()?;
    let (from, to) = v.split_once(':')?;
    Some((from.to_string(), to.to_string()))
}

/// For the run header, e.g. "corrected from Prescott: this OpenBLAS does not know the CPU;
/// OPENBLAS_CORETYPE=Haswell set by backprop".
pub fn correction_note() -> Option<String> {
    let (from, to) = correction()?;
    let now = chosen_core();
    Some(if now.eq_ignore_ascii_case(&to) {
        format!(
            "corrected from {from}: this OpenBLAS does not know the CPU; {CORETYPE_VAR}={to} \
             set by backprop ({OPT_OUT_VAR}=1 keeps {from})"
        )
    } else {
        format!("OpenBLAS chose {from}; asking for {to} did not take effect")
    })
}

/// [`super::blas::describe`], with the correction made at start-up where there was one.
pub fn describe() -> String {
    let line = super::blas::describe();
    match correction_note() {
        Some(note) => format!("{line}, {note}"),
        None => line,
    }
}

/// Advice when OpenBLAS still runs kernels below AVX2 on a CPU that has AVX2 or better
/// (the correction was not made: the user chose the core, opted out, or exec failed).
pub fn advice() -> Option<String> {
    let core = chosen_core();
    let target = target_core(cpu_tier())?;
    (core_tier(&core)? < Tier::Avx2).then(|| {
        format!(
            "OpenBLAS runs its {core} kernels on a CPU that has {}: matrix products are several \
             times slower than with {CORETYPE_VAR}={target}",
            if target == "SkylakeX" {
                "AVX-512"
            } else {
                "AVX2"
            }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base<'a>() -> Situation<'a> {
        Situation {
            chosen: "Prescott",
            openblas_config:
                "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Prescott MAX_THREADS=64",
            user_coretype: None,
            guard_set: false,
            opted_out: false,
            cpu: Some(Tier::Avx2),
        }
    }

    #[test]
    fn generic_core_on_an_avx2_cpu_is_corrected_once() {
        assert_eq!(decide(&base()), Decision::Reexec("Haswell"));
        let avx512 = Situation {
            cpu: Some(Tier::Avx512),
            ..base()
        };
        assert_eq!(decide(&avx512), Decision::Reexec("SkylakeX"));
        let sandy = Situation {
            chosen: "Sandybridge",
            ..base()
        };
        assert_eq!(decide(&sandy), Decision::Reexec("Haswell"));
        let guarded = Situation {
            guard_set: true,
            ..base()
        };
        assert_eq!(decide(&guarded), Decision::Keep);
    }

    #[test]
    fn good_unknown_or_user_chosen_cores_are_kept() {
        for chosen in ["Zen", "Haswell", "SkylakeX", "Cooperlake", "SomeFutureCore"] {
            let s = Situation {
                chosen,
                cpu: Some(Tier::Avx512),
                ..base()
            };
            assert_eq!(decide(&s), Decision::Keep, "{chosen}");
        }
        let user = Situation {
            user_coretype: Some(OsStr::new("Prescott")),
            ..base()
        };
        assert_eq!(decide(&user), Decision::Keep);
        let empty = Situation {
            user_coretype: Some(OsStr::new("")),
            ..base()
        };
        assert_eq!(decide(&empty), Decision::Reexec("Haswell"));
        let opted = Situation {
            opted_out: true,
            ..base()
        };
        assert_eq!(decide(&opted), Decision::Keep);
        let static_build = Situation {
            openblas_config: "OpenBLAS 0.3.21 Prescott",
            ..base()
        };
        assert_eq!(decide(&static_build), Decision::Keep);
        let old_cpu = Situation {
            cpu: Some(Tier::Avx),
            ..base()
        };
        assert_eq!(decide(&old_cpu), Decision::Keep);
    }

    #[test]
    fn avx512_request_on_a_cpu_without_it_is_flagged() {
        let s = Situation {
            chosen: "Zen",
            user_coretype: Some(OsStr::new("skylakex")),
            ..base()
        };
        assert!(matches!(decide(&s), Decision::WarnUserValue(m) if m.contains("Haswell")));
    }
}
