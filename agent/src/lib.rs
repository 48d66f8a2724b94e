//! The reference job agent (see issue 4).
