"""Pure functions returning plotly `go.Figure`s, testable without Streamlit (one module per topic)."""
