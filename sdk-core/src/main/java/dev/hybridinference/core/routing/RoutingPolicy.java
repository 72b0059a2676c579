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

    /**
     * Told of every finished call's receipt with the route this policy gave the call (the same object), or
     * null when it gave none (it refused the call); for policies that hold something back per call, such as
     * a budget reservation. The composite client calls this one; by default it calls {@link
     * #recorded(ChatRequest, Receipt)}. A policy that wraps another passes it on.
     */
    default void recorded(ChatRequest request, Route route, Receipt receipt) {
        recorded(request, receipt);
    }
}
