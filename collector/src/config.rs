//! The `[collector]` section of khorus.toml (see `config/khorus.toml` for a commented
//! example): source, tick, BPF filters, and per-signal normalisation.

use std::collections::BTreeMap;
use std::path::PathBuf;

use khorus_bus::signals::{SIGNAL_COUNT, SIGNALS, SignalId};
use serde::{Deserialize, Serialize};

/// Which source to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SourceChoice {
    /// BPF, falling back to procfs (with the reason) when BPF is not permitted.
    #[default]
    Auto,
    /// BPF only; failing to load is an error.
    Bpf,
    /// Unprivileged procfs counters.
    Procfs,
    /// The seeded deterministic generator.
    Synthetic,
}

/// Normalisation of one signal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tuning {
    /// Rate (in the signal's unit) that maps to level 1.0 on the log scale.
    pub reference_max: f64,
    /// Time constant while the level rises, ms (0 = jump).
    pub attack_ms: f64,
    /// Time constant while the level falls, ms (0 = jump).
    pub release_ms: f64,
}

/// Partial tuning as written in the file: unspecified fields keep the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuningOverride {
    /// See [`Tuning::reference_max`].
    pub reference_max: Option<f64>,
    /// See [`Tuning::attack_ms`].
    pub attack_ms: Option<f64>,
    /// See [`Tuning::release_ms`].
    pub release_ms: Option<f64>,
}

/// Which processes the filterable BPF hooks count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FilterConfig {
    /// Leave the collector's own activity out.
    pub exclude_self: bool,
    /// Count only these processes (tgids), if not empty.
    pub tgid_allow: Vec<u32>,
    /// Never count these processes (tgids).
    pub tgid_deny: Vec<u32>,
    /// Count only tasks in this cgroup (v2 directory) and its descendants.
    pub cgroup: Option<PathBuf>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            exclude_self: true,
            tgid_allow: Vec::new(),
            tgid_deny: Vec::new(),
            cgroup: None,
        }
    }
}

/// The `[collector]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Source to read.
    pub source: SourceChoice,
    /// Tick length, ms (5 ..= 1000), while someone waits for each frame as it comes (the
    /// router with a MIDI peer or OSC target, `khorus tap signals`).
    pub tick_ms: u64,
    /// Tick length, ms (5 ..= 1000; never shorter than `tick_ms`), while every reader takes
    /// frames at its own pace (the composer, 10 times a second).
    pub idle_tick_ms: u64,
    /// Seed of the synthetic source.
    pub seed: u64,
    /// BPF filters.
    pub filter: FilterConfig,
    /// Per-signal overrides of the normalisation, by signal name.
    pub signals: BTreeMap<String, TuningOverride>,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            source: SourceChoice::Auto,
            tick_ms: 20,
            idle_tick_ms: 100,
            seed: 1,
            filter: FilterConfig::default(),
            signals: BTreeMap::new(),
        }
    }
}

/// Tick lengths the collector runs at, ms.
pub const TICK_MS: std::ops::RangeInclusive<u64> = 5..=1000;

impl CollectorConfig {
    /// The idle tick as run: never shorter than the tick (a user who slows `tick_ms` alone
    /// slows both).
    pub fn idle_tick_ms(&self) -> u64 {
        self.idle_tick_ms.max(self.tick_ms)
    }
}

/// A configuration problem, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("collector.{key}: {message}")]
pub struct ConfigError {
    /// Dotted key path below `collector`.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl CollectorConfig {
    /// Checks ranges and names; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, ms) in [
            ("tick_ms", self.tick_ms),
            ("idle_tick_ms", self.idle_tick_ms),
        ] {
            if !TICK_MS.contains(&ms) {
                return Err(ConfigError {
                    key: key.into(),
                    message: format!("{ms} is outside {}..={}", TICK_MS.start(), TICK_MS.end()),
                });
            }
        }
        for (name, o) in &self.signals {
            if SignalId::from_name(name).is_none() {
                let known: Vec<_> = SIGNALS.iter().map(|s| s.name).collect();
                return Err(ConfigError {
                    key: format!("signals.{name}"),
                    message: format!("unknown signal (known: {})", known.join(", ")),
                });
            }
            let checks = [
                ("reference_max", o.reference_max, f64::MIN_POSITIVE, 1e15),
                ("attack_ms", o.attack_ms, 0.0, 600_000.0),
                ("release_ms", o.release_ms, 0.0, 600_000.0),
            ];
            for (field, value, min, max) in checks {
                if let Some(v) = value
                    && !(v.is_finite() && (min..=max).contains(&v))
                {
                    return Err(ConfigError {
                        key: format!("signals.{name}.{field}"),
                        message: format!("{v} is outside {min}..={max}"),
                    });
                }
            }
        }
        if self
            .filter
            .tgid_allow
            .iter()
            .any(|t| self.filter.tgid_deny.contains(t))
        {
            return Err(ConfigError {
                key: "filter".into(),
                message: "a tgid is both allowed and denied".into(),
            });
        }
        Ok(())
    }

    /// The effective tuning per signal: defaults with the file's overrides applied.
    pub fn tuning(&self) -> Vec<Tuning> {
        let mut t = default_tuning();
        for (name, o) in &self.signals {
            if let Some(id) = SignalId::from_name(name) {
                let slot = &mut t[id.index()];
                slot.reference_max = o.reference_max.unwrap_or(slot.reference_max);
                slot.attack_ms = o.attack_ms.unwrap_or(slot.attack_ms);
                slot.release_ms = o.release_ms.unwrap_or(slot.release_ms);
            }
        }
        t
    }
}

/// Default tuning: khor's reference maxima (from the signal table), short attacks, and
/// signal-specific releases — retransmits spiky for percussive triggers, pressure slow moods.
pub fn default_tuning() -> Vec<Tuning> {
    (0..SIGNAL_COUNT)
        .map(|i| {
            let id = SignalId(i as u8);
            let (attack_ms, release_ms) = match id {
                SignalId::RETX => (0.0, 120.0),
                SignalId::IRQ => (10.0, 80.0),
                SignalId::EXEC => (10.0, 400.0),
                SignalId::MEM_PRESSURE => (1500.0, 6000.0),
                SignalId::CPU_PRESSURE | SignalId::IO_PRESSURE => (500.0, 3000.0),
                SignalId::IO_READ | SignalId::IO_WRITE | SignalId::IO_OPS => (30.0, 600.0),
                _ => (40.0, 300.0),
            };
            Tuning {
                reference_max: SIGNALS[i].reference_max as f64,
                attack_ms,
                release_ms,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_validates() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../config/khorus.toml"
        ))
        .unwrap();
        let c: CollectorConfig = khorus_bus::settings::parse_section(&text, "collector").unwrap();
        c.validate().unwrap();
        let d = CollectorConfig::default();
        assert_eq!((c.tick_ms, c.idle_tick_ms), (d.tick_ms, d.idle_tick_ms));
    }

    #[test]
    fn the_idle_tick_is_never_shorter_than_the_tick() {
        let parse = |text: &str| -> CollectorConfig {
            khorus_bus::settings::parse_section(text, "collector").unwrap()
        };
        assert_eq!(CollectorConfig::default().idle_tick_ms(), 100);
        assert_eq!(parse("[collector]\ntick_ms = 250\n").idle_tick_ms(), 250);
        let c = parse("[collector]\nidle_tick_ms = 5000\n");
        assert_eq!(c.validate().unwrap_err().key, "idle_tick_ms");
    }

    #[test]
    fn errors_name_the_key() {
        let c: CollectorConfig =
            khorus_bus::settings::parse_section("[collector]\ntick_ms = 2\n", "collector").unwrap();
        assert_eq!(c.validate().unwrap_err().key, "tick_ms");
        let c: CollectorConfig = khorus_bus::settings::parse_section(
            "[collector.signals.csw]\nattack_ms = -1\n",
            "collector",
        )
        .unwrap();
        assert_eq!(c.validate().unwrap_err().key, "signals.csw.attack_ms");
        let err = khorus_bus::settings::parse_section::<CollectorConfig>(
            "[collector]\ntick = 5\n",
            "collector",
        )
        .unwrap_err();
        assert!(err.contains("tick"), "{err}");
        let c: CollectorConfig = khorus_bus::settings::parse_section(
            "[collector.signals.nope]\nattack_ms = 1\n",
            "collector",
        )
        .unwrap();
        assert_eq!(c.validate().unwrap_err().key, "signals.nope");
    }

    #[test]
    fn overrides_apply_on_top_of_defaults() {
        let c: CollectorConfig = khorus_bus::settings::parse_section(
            "[collector.signals.exec]\nreference_max = 1000\n",
            "collector",
        )
        .unwrap();
        let t = c.tuning();
        assert_eq!(t[SignalId::EXEC.index()].reference_max, 1000.0);
        assert_eq!(
            t[SignalId::EXEC.index()].attack_ms,
            default_tuning()[0].attack_ms
        );
    }
}
