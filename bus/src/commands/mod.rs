//! Stage command enums: the serialised (bincode, via [`codec`](crate::codec)) requests each
//! stage serves on `khorus/cmd/<stage>`, and their replies. One module per stage.

pub mod composer;
pub mod control;
pub mod synth;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StageKind;
use crate::command::{Common, CommonReply};

/// Ties a stage's command service to its request and reply types, so a server or client can
/// only be opened with the types the stage really speaks.
pub trait Commands {
    /// Whose service (`khorus/cmd/<stage>`).
    const STAGE: StageKind;
    /// What it is asked.
    type Request: Serialize + DeserializeOwned;
    /// What it answers.
    type Reply: Serialize + DeserializeOwned;
}

macro_rules! commands {
    ($(#[$doc:meta] $name:ident => $stage:ident, $req:ty, $rep:ty;)*) => {$(
        #[$doc]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Commands for $name {
            const STAGE: StageKind = StageKind::$stage;
            type Request = $req;
            type Reply = $rep;
        }
    )*};
}

commands! {
    /// The collector answers the common commands only.
    Collector => Collector, Common, CommonReply;
    /// The composer's commands.
    Composer => Composer, composer::ComposerCommand, composer::ComposerReply;
    /// The synth's commands.
    Synth => Synth, synth::SynthCommand, synth::SynthReply;
    /// The router answers the common commands only.
    Router => Router, Common, CommonReply;
    /// Control's commands.
    Control => Control, control::ControlCommand, control::ControlReply;
    /// Test peers and tools answer the common commands only.
    Tool => Tool, Common, CommonReply;
}
