"""The knowledge service: SOP cards pushed by industry and stage, feedback duties, monthly retirement and contributions from the field."""
