#pragma once
// Figures of the incident report that more than one test holds the lab against.
#include <string>
#include <vector>

namespace backlog_lab::testing {

/// The 39 balancing probabilities of port 30720's 40-endpoint Service as the report's
/// `iptables -t nat -S` lists them (docs/incident.md, "Excerpts"; docs/proxy-iptables.md).
inline const std::vector<std::string> report_probabilities = {
    "0.02499999991", "0.02564000012", "0.02632000018", "0.02703000000", "0.02778000012",
    "0.02857000008", "0.02940999996", "0.03030000022", "0.03125000000", "0.03225999977",
    "0.03333000001", "0.03447999991", "0.03570999997", "0.03703999985", "0.03845999995",
    "0.04000000004", "0.04167000018", "0.04347999999", "0.04545000009", "0.04761999985",
    "0.04999999981", "0.05262999982", "0.05555999978", "0.05881999992", "0.06250000000",
    "0.06667000009", "0.07143000001", "0.07691999990", "0.08332999982", "0.09090999980",
    "0.10000000009", "0.11110999994", "0.12500000000", "0.14286000002", "0.16667000018",
    "0.20000000019", "0.25000000000", "0.33332999982", "0.50000000000"};

} // namespace backlog_lab::testing
