//! The khorus bus: the contract between the khorus processes.
//!
//! This crate is the only place that knows iceoryx2 and the wire types. Stages open a [`Bus`]
//! (one iceoryx2 node per process), then typed [`Publisher`]s and [`Subscriber`]s for the
//! hot-path payloads ([`SignalFrame`], [`NoteEvent`], [`CurvePoint`], [`StageStatus`]) and
//! [`CommandServer`]s / [`CommandClient`]s for serialised commands. Every pub-sub service is
//! paired with an event service, so a stage sleeps in [`wait::run`] until something arrives.
//!
//! Nothing is dropped silently: publishers count samples a full subscriber buffer refused,
//! subscribers count gaps in the per-publisher sequence numbers; both show up in
//! [`StageStatus`] counters.
#![warn(missing_docs)]

pub mod clock;
pub mod codec;
pub mod command;
pub mod commands;
pub mod config;
mod error;
pub mod logging;
pub mod memory;
pub mod nodes;
pub mod pubsub;
pub mod runner;
mod service;
pub mod services;
pub mod settings;
pub mod signals;
pub mod transfer;
pub mod wait;

pub use command::{CommandClient, CommandServer, Common, Reply, ReplyError};
pub use config::BusConfig;
pub use error::BusError;
pub use pubsub::{Publisher, Subscriber, Topic};
pub use runner::StageRunner;
pub use services::curves::{CurvePoint, CurveShape};
pub use services::notes::{NoteEvent, Role};
pub use services::signals::{SignalFrame, SignalSource};
pub use services::status::{Counter, StageKind, StageStatus};
pub use services::transport::TransportState;
pub use signals::{SIGNALS, SignalId, SignalInfo};

use iceoryx2::prelude::*;

use crate::service::Ipc;

/// One process's handle on the bus: an iceoryx2 node opened with khorus's settings.
///
/// Ports (publishers, subscribers, servers, clients) borrow nothing from it, but must not
/// outlive it in spirit: drop them before the `Bus` so the node is released cleanly.
pub struct Bus {
    node: Node<Ipc>,
    config: BusConfig,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("name", &self.node.name().as_str())
            .field("config", &self.config)
            .finish()
    }
}

impl Bus {
    /// Opens the bus as node `name` (shown by `khorus status` and iceoryx2 tools).
    pub fn open(name: &str, config: &BusConfig) -> Result<Self, BusError> {
        config::quiet_iceoryx_logs();
        let node_name = NodeName::new(name).map_err(|e| BusError::InvalidName {
            name: name.to_string(),
            reason: format!("{e:?}"),
        })?;
        let node = NodeBuilder::new()
            .name(&node_name)
            .config(&config.iceoryx_config()?)
            .signal_handling_mode(SignalHandlingMode::HandleTerminationRequests)
            .create::<Ipc>()
            .map_err(|e| BusError::iceoryx("open the bus node", e))?;
        Ok(Self {
            node,
            config: config.clone(),
        })
    }

    /// The settings this bus was opened with.
    pub fn config(&self) -> &BusConfig {
        &self.config
    }

    /// Opens a publisher on `T`'s service (creating the service if needed).
    pub fn publisher<T: Topic>(&self) -> Result<Publisher<T>, BusError> {
        Publisher::open(&self.node)
    }

    /// Opens a subscriber on `T`'s service (creating the service if needed).
    pub fn subscriber<T: Topic>(&self) -> Result<Subscriber<T>, BusError> {
        Subscriber::open(&self.node)
    }

    /// Serves `S`'s commands on its command service (`khorus/cmd/<stage>`).
    pub fn command_server<S: commands::Commands>(
        &self,
    ) -> Result<CommandServer<S::Request, S::Reply>, BusError> {
        CommandServer::open(&self.node, S::STAGE)
    }

    /// Sends commands to `S`'s command service.
    pub fn command_client<S: commands::Commands>(
        &self,
    ) -> Result<CommandClient<S::Request, S::Reply>, BusError> {
        CommandClient::open(&self.node, S::STAGE)
    }

    /// Lists the nodes on this bus, alive and dead.
    pub fn nodes(&self) -> Result<Vec<nodes::NodeInfo>, BusError> {
        nodes::list(&self.config)
    }

    /// Whether a process of `stage` is on the bus (its node alive, serving yet or not), or
    /// one of the nodes named in `also` (a process that becomes the stage, such as control's
    /// probe). A tool asks this before a command so that it can fail at once when the stage
    /// is not running ([`CommandClient::wait_for_server`] of zero) and still wait for one
    /// that is starting.
    pub fn stage_present(&self, stage: StageKind, also: &[&str]) -> bool {
        self.nodes().is_ok_and(|nodes| {
            nodes.iter().any(|n| {
                n.state == nodes::NodeLiveness::Alive
                    && (n.name == stage.name() || also.contains(&n.name.as_str()))
            })
        })
    }

    /// Finds nodes whose process died without closing them and removes what they left behind
    /// (shared memory, service registrations). Returns how many were cleaned and how many could
    /// not be.
    pub fn cleanup_dead_nodes(&self) -> nodes::Cleanup {
        let state = self.node.try_cleanup_dead_nodes();
        nodes::Cleanup {
            cleaned: state.cleanups,
            failed: state.failed_cleanups,
        }
    }
}
