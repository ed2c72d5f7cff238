//! The definition vocabulary: the primitives a user writes by name (`{"type": "saw", "freq":
//! …}`), their inputs in order with their defaults, and what they become. Not yet the whole
//! vocabulary: the operations written with their own fields (`osc`, `filter`, `adsr`, `mul`,
//! `add`, `tanh`, `midi_to_hz` — [`crate::ir::Op`]) are parsed and lowered by hand, and making
//! them entries here is open work. The kinds here:
//!
//! - **core** names (`sine`, `saw`, …, the noises, the filters) lower to the hand-vectorised
//!   oscillator, noise and state-variable filter operations the voice packs run across lanes;
//! - **functions** ([`Fun`]) are stateless, computed sample by sample from their inputs
//!   (vectorised over the whole pack);
//! - **kernels** ([`KernelKind`]) keep state per voice: a type in [`crate::dsp::kernel`] run
//!   through one generic block loop.
//!
//! - **channels** ([`Chan`]): `pan`, `stereo`, `left`, `right` make and take stereo signals
//!   apart; they lower to functions or to nothing (a choice of buffer).
//!
//! Adding a function is one line in `funs!`; adding a stateful primitive is one type in
//! `dsp/kernel.rs` and one line in `kernels!`. Feedback (`{"type": "feedback", "input": …}`)
//! is the one primitive that may close a cycle: it outputs its input delayed by exactly
//! [`crate::dsp::BLOCK`] samples, whatever the callback size.

use crate::dsp::kernel::{self, ARGS, Kernel};
use crate::dsp::{Out, Sig};

/// An input of a primitive: its name, default (None: required) and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arg {
    /// As users write it.
    pub name: &'static str,
    /// Its value when not given.
    pub default: Option<f32>,
    /// The values it works in (inclusive), where that is narrower than any number: a constant
    /// outside is refused when the definition is compiled, a signal is clamped to it.
    pub range: Option<(f32, f32)>,
}

impl Arg {
    /// A required input.
    pub const fn required(name: &'static str) -> Self {
        Self {
            name,
            default: None,
            range: None,
        }
    }

    /// An input that is `default` when not given.
    pub const fn or(name: &'static str, default: f32) -> Self {
        Self {
            name,
            default: Some(default),
            range: None,
        }
    }

    /// The same input, working within `lo..=hi`.
    pub const fn within(self, lo: f32, hi: f32) -> Self {
        Self {
            range: Some((lo, hi)),
            ..self
        }
    }

    /// Why constant `v` is refused as this input, if it is.
    pub fn refuse(&self, v: f32) -> Option<String> {
        let (lo, hi) = self.range?;
        (!(lo..=hi).contains(&v))
            .then(|| format!("{:?} is {v}, outside its range {lo}..={hi}", self.name))
    }
}

macro_rules! default {
    () => {
        None
    };
    ($d:literal) => {
        Some($d)
    };
}

macro_rules! range {
    () => {
        None
    };
    ($lo:expr, $hi:expr) => {
        Some(($lo, $hi))
    };
}

/// Zero where a function's result is not a finite number (division by zero, log of zero…).
#[inline(always)]
fn finite(x: f32) -> f32 {
    if x.is_finite() { x } else { 0.0 }
}

macro_rules! funs {
    ($($variant:ident $name:literal ($($arg:literal $(= $def:literal)?),*)
        |$a:ident, $b:ident, $c:ident| $body:expr;)*
     @internal $($ivariant:ident $iname:literal ($($iarg:literal $(= $idef:literal)?),*)
        |$ia:ident, $ib:ident, $ic:ident| $ibody:expr;)*) => {
        /// Stateless primitives: a function of up to three inputs per sample. Results that
        /// are not finite become 0. The internal ones are what other primitives lower to
        /// (`pan` to its two gains); users cannot name them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Fun {
            $(#[doc = $name] $variant,)*
            $(#[doc = $iname] $ivariant,)*
        }

        impl Fun {
            /// Every function users can name.
            pub const ALL: &'static [Fun] = &[$(Fun::$variant),*];

            /// Its name as users write it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Fun::$variant => $name,)*
                    $(Fun::$ivariant => $iname,)*
                }
            }

            /// Its inputs, in order.
            pub fn args(self) -> &'static [Arg] {
                match self {
                    $(Fun::$variant => &[$(Arg {
                        name: $arg, default: default!($($def)?), range: None
                    }),*],)*
                    $(Fun::$ivariant => &[$(Arg {
                        name: $iarg, default: default!($($idef)?), range: None
                    }),*],)*
                }
            }

            /// One sample.
            #[inline]
            pub fn apply(self, x: f32, y: f32, z: f32) -> f32 {
                match self {
                    $(Fun::$variant => {
                        #[allow(unused_variables)]
                        let f = |$a: f32, $b: f32, $c: f32| -> f32 { $body };
                        finite(f(x, y, z))
                    })*
                    $(Fun::$ivariant => {
                        #[allow(unused_variables)]
                        let f = |$ia: f32, $ib: f32, $ic: f32| -> f32 { $ibody };
                        finite(f(x, y, z))
                    })*
                }
            }

            /// Element-wise over slices (each arm is its own loop, which the compiler
            /// vectorises).
            pub fn map(self, out: &mut [f32], xa: &[f32], xb: &[f32], xc: &[f32]) {
                match self {
                    $(Fun::$variant => {
                        #[allow(unused_variables)]
                        let f = |$a: f32, $b: f32, $c: f32| -> f32 { $body };
                        for (((o, &x), &y), &z) in out.iter_mut().zip(xa).zip(xb).zip(xc) {
                            *o = finite(f(x, y, z));
                        }
                    })*
                    $(Fun::$ivariant => {
                        #[allow(unused_variables)]
                        let f = |$ia: f32, $ib: f32, $ic: f32| -> f32 { $ibody };
                        for (((o, &x), &y), &z) in out.iter_mut().zip(xa).zip(xb).zip(xc) {
                            *o = finite(f(x, y, z));
                        }
                    })*
                }
            }
        }
    };
}

funs! {
    Abs "abs" ("input") |a, b, c| a.abs();
    Neg "neg" ("input") |a, b, c| -a;
    Min "min" ("a", "b") |a, b, c| a.min(b);
    Max "max" ("a", "b") |a, b, c| a.max(b);
    Sub "sub" ("a", "b") |a, b, c| a - b;
    Div "div" ("a", "b") |a, b, c| if b == 0.0 { 0.0 } else { a / b };
    Pow "pow" ("base", "exponent") |a, b, c| a.abs().powf(b).copysign(a);
    Clip "clip" ("input", "min" = -1.0, "max" = 1.0) |a, b, c| a.max(b).min(c);
    Lerp "lerp" ("a", "b", "t") |a, b, c| a + (b - a) * c;
    Wrap "wrap" ("input", "min" = 0.0, "max" = 1.0) |a, b, c|
        if c > b { b + (a - b).rem_euclid(c - b) } else { b };
    DbToLinear "db_to_linear" ("input") |a, b, c| 10f32.powf(a / 20.0);
    LinearToDb "linear_to_db" ("input") |a, b, c| 20.0 * a.abs().max(1e-10).log10();
    HzToMidi "hz_to_midi" ("input") |a, b, c| 69.0 + 12.0 * (a.max(1e-3) / 440.0).log2();
    Lt "lt" ("a", "b") |a, b, c| if a < b { 1.0 } else { 0.0 };
    Gt "gt" ("a", "b") |a, b, c| if a > b { 1.0 } else { 0.0 };
    Le "le" ("a", "b") |a, b, c| if a <= b { 1.0 } else { 0.0 };
    Ge "ge" ("a", "b") |a, b, c| if a >= b { 1.0 } else { 0.0 };
    Eq "eq" ("a", "b") |a, b, c| if a == b { 1.0 } else { 0.0 };
    Select "select" ("cond", "then", "else") |a, b, c| if a > 0.5 { b } else { c };
@internal
    // The equal-power pan law (`crate::dsp::fx::pan_gains`), one channel each.
    PanLeft "pan" ("input", "pos") |a, b, c| a * crate::dsp::fx::pan_gains(b).0;
    PanRight "pan" ("input", "pos") |a, b, c| a * crate::dsp::fx::pan_gains(b).1;
}

macro_rules! kernels {
    ($($variant:ident $name:literal $ty:ty,
        ($($arg:literal $(= $def:literal)? $([$lo:expr, $hi:expr])?),*);)*) => {
        /// Stateful primitives beyond the core four (see [`crate::dsp::kernel`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum KernelKind {
            $(#[doc = $name] $variant),*
        }

        /// A voice's state of one kernel.
        #[derive(Debug, Clone)]
        pub enum KernelState {
            $(#[doc = $name] $variant($ty)),*
        }

        impl KernelKind {
            /// Every kernel.
            pub const ALL: &'static [KernelKind] = &[$(KernelKind::$variant),*];

            /// Its name as users write it.
            pub fn name(self) -> &'static str {
                match self {
                    $(KernelKind::$variant => $name),*
                }
            }

            /// Its inputs, in order (a `max` input is a setting: a constant, seconds).
            pub fn args(self) -> &'static [Arg] {
                match self {
                    $(KernelKind::$variant => &[$(Arg {
                        name: $arg, default: default!($($def)?), range: range!($($lo, $hi)?)
                    }),*]),*
                }
            }

            /// A voice's state, built off the audio thread.
            pub fn build(self, rate: f32, max_s: f32) -> KernelState {
                match self {
                    $(KernelKind::$variant => KernelState::$variant(<$ty>::new(rate, max_s))),*
                }
            }
        }

        impl KernelState {
            /// Back to the state it was built in.
            pub fn reset(&mut self) {
                match self {
                    $(KernelState::$variant(k) => k.reset()),*
                }
            }

            /// Runs at `rate` Hz from now on, as if built there ([`Kernel::set_sample_rate`]).
            pub fn set_sample_rate(&mut self, rate: f32, max_s: f32) {
                match self {
                    $(KernelState::$variant(k) => k.set_sample_rate(rate, max_s)),*
                }
            }

            /// One sample.
            pub fn tick(&mut self, x: [f32; ARGS]) -> f32 {
                match self {
                    $(KernelState::$variant(k) => k.tick(x)),*
                }
            }

            /// A block.
            #[inline]
            pub fn process<O: Out + ?Sized>(&mut self, args: &[Sig<'_>; ARGS], out: &mut O) {
                match self {
                    $(KernelState::$variant(k) => k.process(args, out)),*
                }
            }
        }
    };
}

kernels! {
    Phasor "phasor" kernel::Phasor, ("freq");
    Lfo "lfo" kernel::Lfo, ("freq" = 1.0);
    OnePole "onepole" kernel::OnePole, ("input", "cutoff" = 1000.0 [0.0, 100_000.0]);
    DcBlock "dcblock" kernel::DcBlocker, ("input");
    Smooth "smooth" kernel::Smooth, ("input", "time" = 0.01 [0.0, 60.0]);
    Ar "ar" kernel::Ar, ("gate", "attack" = 0.01 [0.0, 60.0], "release" = 0.2 [0.0, 60.0]);
    Decay "decay" kernel::Decay, ("trigger", "time" = 0.5 [0.0, 60.0]);
    Delay "delay" kernel::DelayLine,
        ("input", "time" = 0.25 [0.0, MAX_DELAY_S], "max" = 1.0 [0.0, MAX_DELAY_S]);
    Echo "echo" kernel::Echo, ("input", "time" = 0.25 [0.0, MAX_DELAY_S],
        "feedback" = 0.5 [0.0, 0.98], "max" = 1.0 [0.0, MAX_DELAY_S]);
    Chorus "chorus" kernel::Chorus,
        ("input", "speed" = 0.8 [0.0, 20.0], "depth" = 0.5 [0.0, 1.0], "mix" = 0.5 [0.0, 1.0]);
    Flanger "flanger" kernel::Flanger, ("input", "speed" = 0.25 [0.0, 20.0],
        "depth" = 0.7 [0.0, 1.0], "feedback" = 0.5 [-0.95, 0.95], "mix" = 0.5 [0.0, 1.0]);
    Reverb "reverb" kernel::MonoReverb,
        ("input", "room" = 0.7 [0.0, 1.0], "damp" = 0.5 [0.0, 1.0]);
    SampleRate "sample_rate" kernel::SampleRate, ();
}

/// The longest delay a definition may ask for (`max`), s: its line is allocated per voice.
pub const MAX_DELAY_S: f32 = 10.0;

/// What a name in a definition is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prim {
    /// An oscillator of the core (band-limited, wavetable).
    Osc(crate::dsp::osc::Wave, Option<f32>),
    /// Noise of the core: pink or white.
    Noise(bool),
    /// The core state-variable filter.
    Filter(crate::dsp::filter::Mode),
    /// A function.
    Fun(Fun),
    /// A kernel.
    Kernel(KernelKind),
    /// The feedback edge.
    Feedback,
    /// A primitive that makes or takes channels apart.
    Chan(Chan),
}

/// The primitives of stereo. A stereo signal is a pair of buffers; every other primitive
/// given a stereo input runs once per channel (mono inputs feed both), so everything
/// downstream of a `pan` is stereo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Chan {
    /// `pan(input, pos)`: a mono input placed at `pos` (-1 left … 1 right) along the
    /// equal-power law; a stereo input has each channel scaled by the same law.
    Pan,
    /// `stereo(left, right)`: two mono signals as one stereo signal.
    Stereo,
    /// `left(input)`: the left channel (a mono input as it is).
    Left,
    /// `right(input)`: the right channel (a mono input as it is).
    Right,
}

impl Chan {
    /// Its name as users write it.
    pub const fn name(self) -> &'static str {
        match self {
            Chan::Pan => "pan",
            Chan::Stereo => "stereo",
            Chan::Left => "left",
            Chan::Right => "right",
        }
    }

    /// Its inputs, in order.
    pub const fn args(self) -> &'static [Arg] {
        const INPUT: Arg = Arg::required("input");
        const PAN: &[Arg] = &[INPUT, Arg::or("pos", 0.0).within(-1.0, 1.0)];
        const STEREO: &[Arg] = &[Arg::required("left"), Arg::required("right")];
        match self {
            Chan::Pan => PAN,
            Chan::Stereo => STEREO,
            Chan::Left | Chan::Right => &[INPUT],
        }
    }
}

/// Names that lower to the core operations, with their inputs.
const CORE: &[(&str, Prim, &[Arg])] = {
    use crate::dsp::filter::Mode;
    use crate::dsp::osc::Wave;
    const FREQ: Arg = Arg::required("freq");
    const WIDTH: Arg = Arg::or("width", 0.5).within(0.0, 1.0);
    const FILTER: &[Arg] = &[
        Arg::required("input"),
        Arg::required("cutoff"),
        Arg::or("resonance", 0.0).within(0.0, 1.0),
    ];
    &[
        ("sine", Prim::Osc(Wave::Sine, None), &[FREQ]),
        ("saw", Prim::Osc(Wave::Saw, None), &[FREQ]),
        ("triangle", Prim::Osc(Wave::Triangle, None), &[FREQ]),
        ("square", Prim::Osc(Wave::Pulse, Some(0.5)), &[FREQ]),
        ("pulse", Prim::Osc(Wave::Pulse, None), &[FREQ, WIDTH]),
        ("white_noise", Prim::Noise(false), &[]),
        ("pink_noise", Prim::Noise(true), &[]),
        ("lowpass", Prim::Filter(Mode::Lowpass), FILTER),
        ("highpass", Prim::Filter(Mode::Highpass), FILTER),
        ("bandpass", Prim::Filter(Mode::Bandpass), FILTER),
        ("feedback", Prim::Feedback, &[Arg::required("input")]),
        ("pan", Prim::Chan(Chan::Pan), Chan::Pan.args()),
        ("stereo", Prim::Chan(Chan::Stereo), Chan::Stereo.args()),
        ("left", Prim::Chan(Chan::Left), Chan::Left.args()),
        ("right", Prim::Chan(Chan::Right), Chan::Right.args()),
    ]
};

/// Looks a primitive up by name: what it is and its inputs (None: not in the table — the
/// operations written with their own fields, `osc`, `filter`, `adsr`, `mul`, … are parsed
/// as such).
pub fn lookup(name: &str) -> Option<(Prim, &'static [Arg])> {
    if let Some(&(_, prim, args)) = CORE.iter().find(|(n, _, _)| *n == name) {
        return Some((prim, args));
    }
    if let Some(&f) = Fun::ALL.iter().find(|f| f.name() == name) {
        return Some((Prim::Fun(f), f.args()));
    }
    KernelKind::ALL
        .iter()
        .find(|k| k.name() == name)
        .map(|&k| (Prim::Kernel(k), k.args()))
}

/// Every name of the table, for error messages and docs.
pub fn names() -> impl Iterator<Item = &'static str> {
    CORE.iter()
        .map(|(n, _, _)| *n)
        .chain(Fun::ALL.iter().map(|f| f.name()))
        .chain(KernelKind::ALL.iter().map(|k| k.name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        let all: Vec<&str> = names().collect();
        for (i, n) in all.iter().enumerate() {
            assert!(!all[..i].contains(n), "{n} twice");
            assert!(lookup(n).is_some(), "{n}");
        }
        assert!(lookup("warp").is_none());
    }

    #[test]
    fn every_default_is_within_its_declared_range() {
        for name in names() {
            let (_, args) = lookup(name).unwrap();
            for a in args {
                if let (Some(d), Some(_)) = (a.default, a.range) {
                    assert_eq!(a.refuse(d), None, "{name}.{}", a.name);
                }
            }
        }
    }

    #[test]
    fn functions_compute_what_they_say() {
        let f = |name: &str, a, b, c| match lookup(name) {
            Some((Prim::Fun(f), _)) => f.apply(a, b, c),
            _ => panic!("{name}"),
        };
        assert_eq!(f("sub", 5.0, 3.0, 0.0), 2.0);
        assert_eq!(f("div", 1.0, 0.0, 0.0), 0.0, "division by zero is 0");
        assert_eq!(f("pow", -2.0, 3.0, 0.0), -8.0);
        assert_eq!(f("clip", 3.0, -1.0, 1.0), 1.0);
        assert_eq!(f("lerp", 2.0, 4.0, 0.25), 2.5);
        assert_eq!(f("wrap", 1.25, 0.0, 1.0), 0.25);
        assert_eq!(f("wrap", -0.25, 0.0, 1.0), 0.75);
        assert!((f("db_to_linear", -6.0206, 0.0, 0.0) - 0.5).abs() < 1e-4);
        assert!((f("linear_to_db", 0.5, 0.0, 0.0) + 6.0206).abs() < 1e-3);
        assert_eq!(f("linear_to_db", 0.0, 0.0, 0.0), -200.0);
        assert!((f("hz_to_midi", 440.0, 0.0, 0.0) - 69.0).abs() < 1e-5);
        assert_eq!(f("select", 1.0, 7.0, 9.0), 7.0);
        assert_eq!(f("select", 0.0, 7.0, 9.0), 9.0);
        assert_eq!(f("lt", 1.0, 2.0, 0.0), 1.0);
        assert_eq!(f("ge", 1.0, 2.0, 0.0), 0.0);
        for &fun in Fun::ALL {
            let (a, b, c) = (
                [0.5f32, -3.0, 1e30, 0.0],
                [2.0f32, 0.0, -1e30, 0.0],
                [0.1f32; 4],
            );
            let mut out = [0.0; 4];
            fun.map(&mut out, &a, &b, &c);
            for i in 0..4 {
                assert_eq!(out[i], fun.apply(a[i], b[i], c[i]), "{}", fun.name());
                assert!(out[i].is_finite(), "{}", fun.name());
            }
        }
    }
}
