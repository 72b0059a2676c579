package dev.hybridinference.core.routing;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.Receipt;
import java.util.Map;

/**
 * Decides where a request may go. Implementations are thread-safe and quick: they run on every call.
 */
@FunctionalInterface
public interface RoutingPolicy {
    /**
     * The ordered candidates for {@code request}.
     *
     * @param request the request
     * @param members the members' state, by name, for policies that read load, health or cold-start
     *     estimates
     * @throws dev.hybridinference.core.BudgetExceededException when a budget refuses the request
     */
    Route route(ChatRequest request, Map<String, MemberState> members);

    /** Told of every finished call's receipt (successful or not), for policies that count spend. */
    default void recorded(ChatRequest request, Receipt receipt) {}
}
