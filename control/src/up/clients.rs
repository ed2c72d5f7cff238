//! Control's clients of the stages' command services: common commands (ping, status,
//! shutdown) to any stage by kind, whichever command enum wraps them.

use std::time::Duration;

use khorus_bus::command::CommonReply;
use khorus_bus::commands;
use khorus_bus::commands::composer::{ComposerCommand, ComposerReply};
use khorus_bus::commands::synth::{SynthCommand, SynthReply};
use khorus_bus::{Bus, BusError, CommandClient, Common, StageKind, clock};

/// A client of each stage's command service.
#[derive(Debug)]
pub struct Clients {
    /// The collector's.
    pub collector: CommandClient<Common, CommonReply>,
    /// The composer's.
    pub composer: CommandClient<ComposerCommand, ComposerReply>,
    /// The synth's.
    pub synth: CommandClient<SynthCommand, SynthReply>,
    /// The router's.
    pub router: CommandClient<Common, CommonReply>,
}

impl Clients {
    /// Clients of the four stages on `bus`.
    pub fn open(bus: &Bus) -> Result<Self, BusError> {
        Ok(Self {
            collector: bus.command_client::<commands::Collector>()?,
            composer: bus.command_client::<commands::Composer>()?,
            synth: bus.command_client::<commands::Synth>()?,
            router: bus.command_client::<commands::Router>()?,
        })
    }

    /// A common command to `stage`.
    pub fn common(
        &mut self,
        stage: StageKind,
        cmd: Common,
        timeout: Duration,
    ) -> Result<CommonReply, BusError> {
        match stage {
            StageKind::Collector => self.collector.call(&cmd, timeout),
            StageKind::Router => self.router.call(&cmd, timeout),
            StageKind::Composer => {
                match self.composer.call(&ComposerCommand::Common(cmd), timeout)? {
                    ComposerReply::Common(r) => Ok(r),
                    other => Err(unexpected(stage, &other)),
                }
            }
            StageKind::Synth => match self.synth.call(&SynthCommand::Common(cmd), timeout)? {
                SynthReply::Common(r) => Ok(r),
                other => Err(unexpected(stage, &other)),
            },
            _ => Err(BusError::Iceoryx {
                action: "command".into(),
                detail: format!("{} is not supervised", stage.name()),
            }),
        }
    }

    /// Whether some process serves `stage`'s commands now.
    pub fn has_server(&self, stage: StageKind) -> bool {
        match stage {
            StageKind::Collector => self.collector.has_server(),
            StageKind::Composer => self.composer.has_server(),
            StageKind::Synth => self.synth.has_server(),
            StageKind::Router => self.router.has_server(),
            _ => false,
        }
    }

    /// The pid of the process answering `stage`'s commands, if one does.
    pub fn ping(&mut self, stage: StageKind, timeout: Duration) -> Option<u32> {
        let nonce = clock::now_ns();
        match self.common(stage, Common::Ping { nonce }, timeout) {
            Ok(CommonReply::Pong { nonce: n, pid }) if n == nonce => Some(pid),
            _ => None,
        }
    }
}

fn unexpected(stage: StageKind, reply: &impl std::fmt::Debug) -> BusError {
    BusError::Iceoryx {
        action: format!("command {}", stage.name()),
        detail: format!("unexpected reply {reply:?}"),
    }
}
