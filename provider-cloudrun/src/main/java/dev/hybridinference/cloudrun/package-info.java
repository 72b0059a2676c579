/** LLM containers on Google Cloud Run behind {@link dev.hybridinference.core.InferenceClient}. */
package dev.hybridinference.cloudrun;
