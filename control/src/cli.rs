//! What the `khorus` command runs besides `khorus up`: the client that turns the command line
//! into control commands ([`client`]), the bus tools — [`tap`] prints live traffic,
//! [`inject`] publishes JSON lines onto the bus, [`nodes`] lists the processes on the bus —
//! and [`install`] (the systemd user unit).

pub mod client;
pub mod inject;
pub mod install;
pub mod nodes;
pub mod tap;
