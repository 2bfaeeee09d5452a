//! Ferry transfer engine (see ARCHITECTURE).
