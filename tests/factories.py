import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from inbox.models import CannedResponse, Contact, ContactIdentity, Conversation, Label, Message
from organizations.models import Membership, Organization, Role, Team
from providers.models import Channel

DEFAULT_CONFIG = {
    "whatsapp_cloud": (
        {"phone_number_id": "106540352242922", "business_account_id": "102290129340398"},
        {"access_token": "EAAG-test-token", "app_secret": "test-app-secret", "verify_token": "verify-me"},
    ),
    "telegram": ({"mode": "webhook"}, {"bot_token": "123456:ABC-DEF1234ghIkl", "secret_token": "tg-secret_1"}),
    "twilio_sms": ({"account_sid": "AC" + "1" * 32, "from": "+15005550006"}, {"auth_token": "twilio-auth-token"}),
    "twilio_whatsapp": (
        {"account_sid": "AC" + "1" * 32, "from": "whatsapp:+14155238886"},
        {"auth_token": "twilio-auth-token"},
    ),
    "messenger": ({"page_id": "1234567890"}, {"page_access_token": "EAAP", "app_secret": "s", "verify_token": "v"}),
    "instagram": (
        {"instagram_account_id": "17841400000000000"},
        {"page_access_token": "EAAP", "app_secret": "s", "verify_token": "v"},
    ),
    "email": ({"esp": "smtp", "from_email": "support@example.com", "domain": "example.com"}, {}),
    "webchat": ({"allowed_origins": ["https://shop.example.com"]}, {"identity_secret": "idsecret"}),
}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"agent{n}@example.com")
    email = factory.SelfAttribute("username")
    password = factory.django.Password("correct-horse-battery")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Role.AGENT


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Team {n}")


class ChannelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Channel
        skip_postgeneration_save = True

    organization = factory.SubFactory(OrganizationFactory)
    kind = "whatsapp_cloud"
    name = factory.Sequence(lambda n: f"Channel {n}")
    config = factory.LazyAttribute(lambda o: dict(DEFAULT_CONFIG[o.kind][0]))

    @factory.post_generation
    def credentials(obj, create, extracted, **kwargs):
        obj.credentials = extracted if extracted is not None else dict(DEFAULT_CONFIG[obj.kind][1])
        if create:
            obj.save()


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Faker("name")


class ContactIdentityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactIdentity

    contact = factory.SubFactory(ContactFactory)
    organization = factory.SelfAttribute("contact.organization")
    kind = ContactIdentity.Kind.PHONE
    value = factory.Sequence(lambda n: f"+1555{n:07d}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    organization = factory.SubFactory(OrganizationFactory)
    channel = factory.SubFactory(ChannelFactory, organization=factory.SelfAttribute("..organization"))
    contact = factory.SubFactory(ContactFactory, organization=factory.SelfAttribute("..organization"))
    last_activity_at = factory.LazyFunction(timezone.now)
    last_inbound_at = factory.LazyFunction(timezone.now)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    organization = factory.SelfAttribute("conversation.organization")
    channel = factory.SelfAttribute("conversation.channel")
    direction = Message.Direction.IN
    status = Message.Status.RECEIVED
    text = factory.Faker("sentence")
    created_at = factory.LazyFunction(timezone.now)


class LabelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Label

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"label-{n}")


class CannedResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CannedResponse

    organization = factory.SubFactory(OrganizationFactory)
    shortcut = factory.Sequence(lambda n: f"reply{n}")
    text = "Thanks for writing to us!"
