//! The daemon loop: feeds the core with packets, timers, resource results and
//! signals, and carries out its actions.
