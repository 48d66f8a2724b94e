//! Fake Apica load-test backend (see issue 3).
