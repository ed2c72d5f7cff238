//! khorus collector: kernel activity to signal frames.
