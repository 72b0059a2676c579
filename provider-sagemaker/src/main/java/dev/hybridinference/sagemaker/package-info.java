/** AWS SageMaker endpoints behind {@link dev.hybridinference.core.InferenceClient}. */
package dev.hybridinference.sagemaker;
