//! Stage command enums: the serialised (bincode, via [`codec`](crate::codec)) requests each
//! stage serves on `khorus/cmd/<stage>`, and their replies. One module per stage.

pub mod composer;
pub mod synth;
