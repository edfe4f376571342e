"""Credit: subsidised household poverty loans (扶贫到户贷款), quotas, recovery and subsidies (贴息)."""
