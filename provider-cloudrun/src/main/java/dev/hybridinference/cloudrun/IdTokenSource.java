package dev.hybridinference.cloudrun;

import com.google.auth.oauth2.GoogleCredentials;
import com.google.auth.oauth2.IdToken;
import com.google.auth.oauth2.IdTokenCredentials;
import com.google.auth.oauth2.IdTokenProvider;
import dev.hybridinference.core.AuthenticationException;
import dev.hybridinference.core.ProviderUnavailableException;
import java.io.IOException;
import java.util.List;
import java.util.Objects;
import java.util.function.Supplier;

/**
 * Google-signed ID tokens for one audience, from credentials that can mint them (the metadata server's on
 * Google Cloud, a service account's key, impersonation), cached and refreshed by the library before they
 * expire (it refreshes 3 min 45 s ahead). Once cached, a token costs a clock read. Thread-safe.
 */
final class IdTokenSource implements Supplier<String> {
    private final String providerId;
    private final String audience;
    private final IdTokenCredentials credentials;

    IdTokenSource(String providerId, GoogleCredentials base, String audience) {
        this.providerId = Objects.requireNonNull(providerId, "providerId");
        this.audience = Objects.requireNonNull(audience, "audience");
        if (!(base instanceof IdTokenProvider)) {
            throw new IllegalArgumentException(
                    "credentials of type " + base.getClass().getSimpleName()
                            + " cannot mint ID tokens (user credentials from 'gcloud auth application-default login' cannot);"
                            + " use a service account's key file, or run on Google Cloud");
        }
        this.credentials = IdTokenCredentials.newBuilder()
                .setIdTokenProvider((IdTokenProvider) base)
                .setTargetAudience(audience)
                .setOptions(List.of(IdTokenProvider.Option.FORMAT_FULL))
                .build();
    }

    /** The audience the tokens are for. */
    String audience() {
        return audience;
    }

    @Override
    public String get() {
        try {
            credentials.refreshIfExpired();
        } catch (IOException e) {
            // The metadata server or token endpoint failing is passing more often than not: retryable.
            throw new ProviderUnavailableException(
                    "could not get an ID token for " + audience + ": " + e.getMessage(), providerId, null, 0, null, e);
        } catch (RuntimeException e) {
            throw new AuthenticationException(
                    "could not get an ID token for " + audience + ": " + e.getMessage(), providerId, null, 0, null, e);
        }
        IdToken token = credentials.getIdToken();
        if (token == null) {
            throw new AuthenticationException(
                    "the credentials gave no ID token for " + audience, providerId, null, 0, null, null);
        }
        return token.getTokenValue();
    }
}
