# syntax=docker/dockerfile:1
# An image with your own bots in it, on top of the botstream image. Build it from your bots folder
# (the bot modules, their helpers, a requirements.txt if they need packages, optionally bots.toml):
#
#   docker build -t botstream:0.1.0 .                                    # the botstream image (repository root)
#   docker build -f deploy/bots.Dockerfile -t registry.example.com/acme/botstream-bots:1.0.0 path/to/mybots
#
# The bots file names each module (`handler = "mybot"`) and says where it is (`handler_path =
# "/opt/bots"`), so the bots file itself can come from a ConfigMap mounted at /etc/botstream while
# the code lives in the image. kustomize: `images: [{name: botstream, newName: registry.example.com/
# acme/botstream-bots, newTag: "1.0.0"}]`.
ARG BOTSTREAM_IMAGE=botstream:0.1.0
FROM ${BOTSTREAM_IMAGE}
USER root
COPY --chown=10001:10001 . /opt/bots/
# the bots' own dependencies, under the same pins as botstream's where they overlap
RUN if [ -f /opt/bots/requirements.txt ]; then pip install --no-cache-dir -r /opt/bots/requirements.txt; fi \
 && python -m compileall -q /opt/bots
USER 10001:10001
