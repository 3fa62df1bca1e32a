//! The TOML config parser: `config::parse` on arbitrary bytes (as lossy UTF-8), then
//! `Config::validate`, and for accepted configs the derived values and a TOML round trip.
//!
//! Checks: no panic anywhere (parse, error Display, validate, schedule, activations, init,
//! hyper-parameters, serialisation); a parsed config serialises and parses back to an
//! equal `Config` (configs holding a NaN are compared by their serialised text instead,
//! since NaN != NaN).
#![no_main]

use backprop::config::{self, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let text = String::from_utf8_lossy(bytes);
    let config = match config::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };

    // Round trip, for every parsed config (validation comes after CLI overrides in the app).
    let out = toml::to_string(&config)
        .unwrap_or_else(|e| panic!("cannot serialise a parsed config: {e}\n{config:#?}"));
    let back: Config = config::parse(&out)
        .unwrap_or_else(|e| panic!("serialised config does not parse back: {e}\n{out}"));
    if back != config {
        // NaN floats compare unequal; then the serialised forms must still agree.
        let again = toml::to_string(&back).expect("serialise the re-parsed config");
        assert_eq!(again, out, "round trip changed the config");
        assert!(
            out.contains("nan"),
            "round trip changed the config:\n{config:#?}\nvs\n{back:#?}"
        );
    }

    match config.validate() {
        Ok(()) => {
            let schedule = config.schedule();
            let epochs = config.train.epochs;
            for e in [
                0,
                1,
                2,
                10,
                epochs / 2,
                epochs.saturating_sub(1),
                epochs,
                1_000_000,
            ] {
                let _ = schedule.lr(e);
            }
            let acts = config.hidden_activations();
            assert_eq!(acts.len(), config.model.hidden.len());
            let _ = config.output_activation();
            let _ = config.init();
            let _ = config.hyper();
            back.validate()
                .expect("the round-tripped config validates too");
        }
        Err(e) => {
            let _ = format!("{e:#}");
        }
    }
});
