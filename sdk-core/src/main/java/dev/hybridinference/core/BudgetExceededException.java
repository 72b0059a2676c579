package dev.hybridinference.core;

/**
 * A cost budget is spent and the routing configuration says to refuse rather than downgrade. Not
 * retryable until the budget's period rolls over.
 */
public class BudgetExceededException extends InferenceException {
    /**
     * Creates the exception.
     *
     * @param message which budget, how much is spent and when it resets
     * @param providerId the composite client's id
     */
    public BudgetExceededException(String message, String providerId) {
        super(message, providerId, null, 0, null, null);
    }
}
