"""Training commands: data loading shared by all trainers, one module per trained network."""
