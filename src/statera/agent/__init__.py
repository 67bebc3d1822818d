"""The amphora agent: runs inside an amphora; never imports the control plane."""
