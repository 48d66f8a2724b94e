//! The scenario runner (see issue 5).
