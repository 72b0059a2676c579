package dev.hybridinference.core.routing;

import java.util.List;
import java.util.Objects;

/**
 * The members a request may go to, in the order to try them, and why.
 *
 * @param candidates member names, first choice first
 * @param reason the routing decision in words ({@code "tier small by rule prompt <= 2000 tokens; ..."})
 * @param tier the tier chosen, or null when the policy has no tiers
 */
public record Route(List<String> candidates, String reason, String tier) {
    /** Copies the list. */
    public Route {
        candidates = List.copyOf(candidates);
        Objects.requireNonNull(reason, "reason");
    }
}
