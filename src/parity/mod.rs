//! `check-fixture`: runs a parity fixture folder (weights + inputs/outputs of the official code).
