//! End-to-end tests: the real khorus binaries on a real iceoryx2 bus, and a real PipeWire
//! daemon. Each test has a bus (and, where needed, a PipeWire session) of its own, so two
//! copies of the suite run side by side without seeing each other. One static check reads the
//! workspace's sources instead ([`imports`]).

mod bus;
mod control;
mod imports;
mod pipeline;
mod pipewire;
