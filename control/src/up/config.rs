//! The `[control]` section of `khorus.toml`: which stages `khorus up` starts, with which
//! flags, and how it supervises them.

use khorus_bus::StageKind;
use serde::Deserialize;

/// Supervision settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlConfig {
    /// Stages not to start (`["router"]`).
    pub without: Vec<String>,
    /// Extra flags for the collector.
    pub collector_args: Vec<String>,
    /// Extra flags for the composer.
    pub composer_args: Vec<String>,
    /// Extra flags for the synth.
    pub synth_args: Vec<String>,
    /// Extra flags for the router.
    pub router_args: Vec<String>,
    /// A ready stage whose status stops arriving for this long is hung: killed and restarted
    /// (s, 2..=600).
    pub hang_timeout_s: f64,
    /// Longest wait between restarts of a crash-looping stage (s, 1..=3600).
    pub backoff_max_s: f64,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            without: Vec::new(),
            collector_args: Vec::new(),
            composer_args: Vec::new(),
            synth_args: Vec::new(),
            router_args: Vec::new(),
            hang_timeout_s: 5.0,
            backoff_max_s: 30.0,
        }
    }
}

/// The stages control supervises, in start order.
pub const STAGES: [StageKind; 4] = [
    StageKind::Collector,
    StageKind::Synth,
    StageKind::Router,
    StageKind::Composer,
];

impl ControlConfig {
    /// Checks values and names; errors name the key.
    pub fn validate(&self) -> Result<(), String> {
        for name in &self.without {
            if !STAGES.iter().any(|s| s.name() == name) {
                return Err(format!(
                    "control.without: unknown stage {name:?} (collector, composer, synth, router)"
                ));
            }
        }
        if !(2.0..=600.0).contains(&self.hang_timeout_s) {
            return Err(format!(
                "control.hang_timeout_s = {}: must be 2..=600",
                self.hang_timeout_s
            ));
        }
        if !(1.0..=3600.0).contains(&self.backoff_max_s) {
            return Err(format!(
                "control.backoff_max_s = {}: must be 1..=3600",
                self.backoff_max_s
            ));
        }
        Ok(())
    }

    /// Whether `stage` is started.
    pub fn enabled(&self, stage: StageKind) -> bool {
        !self.without.iter().any(|w| w == stage.name())
    }

    /// The extra flags of `stage`.
    pub fn args(&self, stage: StageKind) -> &[String] {
        match stage {
            StageKind::Collector => &self.collector_args,
            StageKind::Composer => &self.composer_args,
            StageKind::Synth => &self.synth_args,
            StageKind::Router => &self.router_args,
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_is_the_default() {
        let c: ControlConfig = khorus_bus::settings::parse_section(
            include_str!("../../../config/khorus.toml"),
            "control",
        )
        .unwrap();
        assert_eq!(c, ControlConfig::default());
    }

    #[test]
    fn keys_are_checked_by_name() {
        let c: ControlConfig =
            khorus_bus::settings::parse_section("[control]\nwithout = [\"router\"]\n", "control")
                .unwrap();
        assert!(!c.enabled(StageKind::Router) && c.enabled(StageKind::Synth));
        c.validate().unwrap();
        let bad = ControlConfig {
            without: vec!["mixer".into()],
            ..ControlConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("\"mixer\""));
        let e = khorus_bus::settings::parse_section::<ControlConfig>(
            "[control]\nhang = 3\n",
            "control",
        )
        .unwrap_err();
        assert!(e.contains("hang"), "{e}");
    }
}
